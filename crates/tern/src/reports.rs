//! `tern report`: the DMARC aggregate reports received at our report
//! address, and sending ours (RFC 7489 §7.2).

use std::sync::Arc;

use store::Store;

use crate::admin::AdminError;
use crate::cli::ReportCmd;
use crate::config::Config;
use crate::serve;

pub async fn report(
    store: Arc<dyn Store>,
    config: &Config,
    cmd: ReportCmd,
) -> Result<(), AdminError> {
    match cmd {
        ReportCmd::List => {
            for r in store.received_reports().await? {
                println!("{}", policy::feedback::summary(&r));
            }
        }
        ReportCmd::Show { id } => {
            let Some(r) = store.received_report(id).await? else {
                return Err(AdminError(format!("report {id} not found")));
            };
            print!("{}", policy::feedback::describe(&r).map_err(AdminError)?);
        }
        ReportCmd::Send => send(store, config).await?,
    }
    Ok(())
}

/// Send what is due now (DMARC aggregate and TLS reports), one line per
/// domain reported on.
async fn send(store: Arc<dyn Store>, config: &Config) -> Result<(), AdminError> {
    let fail = |e: serve::ServeError| AdminError(e.0);
    let mda = serve::mda(config, &store).await.map_err(fail)?;
    let resolver = serve::resolver(config).map_err(fail)?;
    let signer = serve::signer(config, &store);
    let psl = Arc::new(serve::public_suffix_list(config).map_err(fail)?);
    let reporter = serve::reporter(config, &store, &mda, &resolver, &signer, psl);
    let until = reporter.due_until(message::date::unix_now());
    let outcomes = reporter.send_due(until).await?;
    if outcomes.is_empty() {
        println!("no DMARC aggregate reports due");
    }
    for o in outcomes {
        let mut line = format!("{}: {} messages", o.domain, o.messages);
        if !o.sent.is_empty() {
            line.push_str(&format!("; sent to {}", o.sent.join(", ")));
        }
        for (to, why) in &o.skipped {
            line.push_str(&format!("; not to {to}: {why}"));
        }
        println!("{line}");
    }
    // RFC 8460: the TLS reports of the period that ended, too.
    let tls = serve::tls_reporter(config, &store, &mda, &resolver, &signer);
    let domains = tls
        .send_due(tls.due_until(message::date::unix_now()))
        .await?;
    match domains.is_empty() {
        true => println!("no TLS reports due"),
        false => println!("TLS reports sent about {}", domains.join(", ")),
    }
    Ok(())
}

//! DKIM signatures, ARC sets (RFC 8617) and the From: of a message, as the
//! MX verifies them (`policy::verify`): the header fields are anyone's, and
//! a broken chain must come out as `fail`, never as a panic. DNS is a
//! responder in the process that answers NXDOMAIN to everything, so every
//! key lookup fails fast.
#![no_main]
use std::sync::{Arc, OnceLock};

struct World {
    rt: tokio::runtime::Runtime,
    verifier: policy::verify::Verifier,
    sender: policy::verify::SenderChecks,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let resolver = rt.block_on(async {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = socket.local_addr().expect("address");
            tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                    if n < 12 {
                        continue;
                    }
                    // The query back as a response (QR), NXDOMAIN (RCODE 3).
                    buf[2] |= 0x80;
                    buf[3] = (buf[3] & 0xF0) | 3;
                    let _ = socket.send_to(&buf[..n], peer).await;
                }
            });
            dns::Resolver::new(&dns::DnsConfig {
                nameservers: vec![addr],
                timeout: Some(std::time::Duration::from_millis(200)),
                ..Default::default()
            })
            .expect("resolver")
        });
        let verifier = policy::verify::Verifier::new(
            resolver,
            Arc::new(policy::psl::PublicSuffixList::shipped()),
            policy::verify::VerifyConfig {
                authserv_id: "mx.a.test".into(),
                spf_reject: true,
                dmarc_enforce: true,
                trusted_arc_sealers: vec!["b.test".into()],
                require_from: false,
            },
        );
        let sender =
            rt.block_on(verifier.sender("192.0.2.1".parse().expect("ip"), "b.test", "s@b.test"));
        World {
            rt,
            verifier,
            sender,
        }
    })
}

libfuzzer_sys::fuzz_target!(|message: &[u8]| {
    let w = world();
    let content = message::spool::Spooled::from_vec(message.to_vec());
    let _ = w.rt.block_on(w.verifier.message(&w.sender, &content, None));
});

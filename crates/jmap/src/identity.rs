//! Identity/get (RFC 8621 §6): the addresses the user may send as, the
//! same ones SMTP submission lets them use: their own and every alias
//! that leads to them. Identities follow the aliases the operator keeps;
//! users cannot make or change them here (Identity/set refuses each).

use serde_json::{Value, json};

use crate::Context;
use crate::args::Args;
use crate::error::{MethodError, SetError};
use crate::set::{SetRequest, SetResponse, get_arguments};

/// An identity's id: its address in hex (the id alphabet of RFC 8620
/// §1.2 has no `@`), stable while the alias exists.
pub fn id_of(address: &str) -> String {
    let hex: String = address.bytes().map(|b| format!("{b:02x}")).collect();
    format!("I{hex}")
}

/// The addresses the account may send as, its own first.
pub async fn addresses(context: &Context<'_>) -> Result<Vec<String>, MethodError> {
    let mut out = vec![context.account.address.clone()];
    let mut aliases = context
        .store()
        .aliases_targeting(&context.account.address)
        .await?;
    aliases.sort();
    out.extend(aliases);
    Ok(out)
}

/// The identities' state: it changes when the list of addresses does.
fn state(addresses: &[String]) -> String {
    crate::set::digest(&addresses.join("\n"))
}

/// Identity/get.
pub async fn get(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let (ids, _) = get_arguments(args, context.jmap.limits.max_objects_in_get)?;
    let addresses = addresses(context).await?;
    let all: Vec<(String, &String)> = addresses.iter().map(|a| (id_of(a), a)).collect();
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    let wanted = ids.unwrap_or_else(|| all.iter().map(|(id, _)| id.clone()).collect());
    for id in wanted {
        match all.iter().find(|(i, _)| *i == id) {
            Some((id, address)) => list.push(json!({
                "id": id,
                "name": "",
                "email": address,
                "replyTo": null,
                "bcc": null,
                "textSignature": "",
                "htmlSignature": "",
                "mayDelete": false,
            })),
            None => not_found.push(id),
        }
    }
    Ok(json!({
        "accountId": context.account_id,
        "state": state(&addresses),
        "list": list,
        "notFound": not_found,
    }))
}

/// Identity/set: every change refused (identities are the operator's
/// aliases, `tern alias`).
pub async fn set(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let current = state(&addresses(context).await?);
    let request = SetRequest::parse(args, context.jmap.limits.max_objects_in_set, &current)?;
    let why = || {
        SetError::Forbidden(
            "identities are the account's address and aliases, kept by the operator".into(),
        )
    };
    let mut response = SetResponse::default();
    for (creation, _) in request.create {
        response.not_created(creation, why());
    }
    for (id, _) in request.update {
        response.not_updated(id, why());
    }
    for id in request.destroy {
        response.not_destroyed(id, why());
    }
    Ok(response.into_value(&context.account_id, &current, &current))
}

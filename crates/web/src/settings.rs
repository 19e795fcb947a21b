//! The webmail's settings that are not JMAP: the filter editor (its rules
//! kept as a Sieve script, [`crate::filters`]) and the user's public keys
//! (published for WKD and the DNS, encryption at rest), each with the
//! checks the CLI applies (`policy::publish`).

use std::net::IpAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use store::AccountRecord;

use crate::jmap::{JmapRoutes, json};
use crate::routes::text;

fn unavailable() -> Response<Bytes> {
    text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n")
}

fn bad_request(why: impl std::fmt::Display) -> Response<Bytes> {
    json(
        StatusCode::BAD_REQUEST,
        &json!({ "error": why.to_string() }),
    )
}

impl JmapRoutes {
    /// `GET /webmail/filters`: the editor's rules (None when its script
    /// is not there or was changed by something else) and the name of the
    /// active script.
    pub(crate) async fn filters(&self, account: &AccountRecord) -> Response<Bytes> {
        let store = self.jmap.store();
        let (Ok(mine), Ok(active)) = (
            store.sieve_get(account.id, crate::filters::SCRIPT).await,
            self.active_script(account).await,
        ) else {
            return unavailable();
        };
        let rules = mine.as_deref().map(crate::filters::rules);
        json(
            StatusCode::OK,
            &json!({
                "rules": rules.clone().flatten().unwrap_or_default(),
                "editedElsewhere": matches!(rules, Some(None)),
                "active": active,
            }),
        )
    }

    /// The name of the account's active script, as stored now (delivery's
    /// cached answer may lag behind another process's change).
    async fn active_script(&self, account: &AccountRecord) -> store::Result<Option<String>> {
        let list = self.jmap.store().sieve_list(account.id).await?;
        Ok(list.into_iter().find(|s| s.active).map(|s| s.name))
    }

    /// `POST /webmail/filters/save` with `{"rules": [...], "replace"}`:
    /// the rules written as the editor's script and made the active one;
    /// another active script (from a ManageSieve client) is only replaced
    /// with `replace: true` (409 names it otherwise).
    pub(crate) async fn save_filters(
        &self,
        req: &Request<Bytes>,
        account: &AccountRecord,
        client: IpAddr,
    ) -> Response<Bytes> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Save {
            rules: Vec<crate::filters::Rule>,
            #[serde(default)]
            replace: bool,
        }
        let save: Save = match serde_json::from_slice(req.body()) {
            Ok(s) => s,
            Err(e) => return bad_request(e.to_string()),
        };
        let script = match crate::filters::script(&save.rules) {
            Ok(s) => s,
            Err(why) => return bad_request(why),
        };
        let store = self.jmap.store();
        let Ok(active) = self.active_script(account).await else {
            return unavailable();
        };
        if let Some(name) = active
            && name != crate::filters::SCRIPT
            && !save.replace
        {
            return json(
                StatusCode::CONFLICT,
                &json!({"error": format!("the script {name:?} is active (set by another mail client); saving replaces it"), "active": name}),
            );
        }
        let saved = async {
            store
                .sieve_put(account.id, crate::filters::SCRIPT, &script)
                .await?;
            store
                .sieve_activate(account.id, Some(crate::filters::SCRIPT))
                .await
        };
        if saved.await.is_err() {
            return unavailable();
        }
        tracing::info!(account = %account.address, %client, rules = save.rules.len(), "webmail: filters saved");
        json(StatusCode::OK, &json!({"saved": save.rules.len()}))
    }

    /// `POST /webmail/keys/find` with `{"addresses": [...]}` (at most
    /// [`MAX_FIND`]): the S/MIME certificate (base64 DER) the webmail may
    /// encrypt to for each address, null where there is none: the one
    /// published here, else the one the address's domain names whole in a
    /// DNSSEC-signed SMIMEA record (usage 3, selector 0, matching 0: RFC
    /// 8162 §2), as delivery trusts it.
    pub(crate) async fn find_keys(&self, req: &Request<Bytes>) -> Response<Bytes> {
        use base64::Engine;
        const MAX_FIND: usize = 100;
        let form: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let Some(addresses) = form["addresses"].as_array() else {
            return bad_request("addresses (a list) is required");
        };
        if addresses.len() > MAX_FIND {
            return bad_request(format!("at most {MAX_FIND} addresses"));
        }
        let store = self.jmap.store();
        let mut found = serde_json::Map::new();
        for address in addresses.iter().filter_map(Value::as_str) {
            if address.len() > 254 || !address.contains('@') {
                return bad_request(format!("{address:?} is not an address"));
            }
            let here = match store.account_credentials(address).await {
                Ok(Some(c)) => store
                    .public_keys(c.account.id)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .find(|k| k.kind == store::KeyKind::Smime)
                    .map(|k| k.data),
                Ok(None) => None,
                Err(_) => return unavailable(),
            };
            let certificate = match (here, &self.sender_keys) {
                (Some(der), _) => Some(der),
                (None, Some(lookups)) => lookups
                    .smimea(address)
                    .await
                    .filter(|v| v.secure)
                    .and_then(|v| {
                        v.value
                            .into_iter()
                            .find(|t| (t.usage, t.selector, t.matching) == (3, 0, 0))
                    })
                    .map(|t| t.data),
                (None, None) => None,
            };
            let value = certificate
                .filter(|der| policy::smime_encrypt::can_encrypt(der))
                .map(|der| Value::String(base64::engine::general_purpose::STANDARD.encode(der)));
            found.insert(address.to_string(), value.unwrap_or(Value::Null));
        }
        json(StatusCode::OK, &json!({ "certificates": found }))
    }

    /// `GET /webmail/keys`: the user's published keys.
    pub(crate) async fn keys(&self, account: &AccountRecord) -> Response<Bytes> {
        let store = self.jmap.store();
        let (Ok(keys), Ok(encrypting)) = (
            store.public_keys(account.id).await,
            store.encrypts_at_rest(account.id).await,
        ) else {
            return unavailable();
        };
        let list: Vec<Value> = keys
            .iter()
            .map(|k| json!({"kind": k.kind.as_str(), "fingerprint": k.fingerprint, "published": message::date::rfc3339_text(k.created)}))
            .collect();
        json(
            StatusCode::OK,
            &json!({ "keys": list, "encryptAtRest": encrypting }),
        )
    }

    /// `POST /webmail/keys/encrypt` with `{"on": bool}`: encryption at
    /// rest, as `tern key encrypt` turns it (on needs a published key that
    /// can encrypt: [`policy::at_rest_key`]).
    pub(crate) async fn encrypt_at_rest(
        &self,
        req: &Request<Bytes>,
        account: &AccountRecord,
        client: IpAddr,
    ) -> Response<Bytes> {
        let form: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let Some(on) = form["on"].as_bool() else {
            return bad_request("on (true or false) is required");
        };
        let store = self.jmap.store();
        if on {
            let Ok(keys) = store.public_keys(account.id).await else {
                return unavailable();
            };
            if policy::at_rest_key(&keys).is_none() {
                return bad_request(
                    "publish an OpenPGP key with an encryption subkey, or an S/MIME certificate, first",
                );
            }
        }
        if store.set_encrypt_at_rest(account.id, on).await.is_err() {
            return unavailable();
        }
        tracing::info!(account = %account.address, %client, on, "webmail: encryption at rest changed");
        json(StatusCode::OK, &json!({"encryptAtRest": on}))
    }

    /// `POST /webmail/keys/publish` with `{"data": base64}`: an OpenPGP
    /// public key or S/MIME certificate that names the user, as `tern key
    /// put` takes it (the same checks: `policy::publish`).
    pub(crate) async fn publish_key(
        &self,
        req: &Request<Bytes>,
        account: &AccountRecord,
        client: IpAddr,
    ) -> Response<Bytes> {
        use base64::Engine;
        let form: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let Some(Ok(data)) = form["data"]
            .as_str()
            .map(|d| base64::engine::general_purpose::STANDARD.decode(d))
        else {
            return bad_request("data (base64) is required");
        };
        let now = message::date::unix_now();
        let key = match policy::publish::understand(&account.address, &data, now) {
            Ok(k) => k,
            Err(why) => return bad_request(why),
        };
        let (kind, fingerprint) = (key.kind.as_str(), key.fingerprint.clone());
        if self
            .jmap
            .store()
            .put_public_key(account.id, key)
            .await
            .is_err()
        {
            return unavailable();
        }
        tracing::info!(account = %account.address, %client, kind, %fingerprint, "webmail: public key published");
        json(
            StatusCode::OK,
            &json!({"kind": kind, "fingerprint": fingerprint}),
        )
    }

    /// `POST /webmail/keys/withdraw` with `{"kind": "openpgp"|"smime"}`.
    pub(crate) async fn withdraw_key(
        &self,
        req: &Request<Bytes>,
        account: &AccountRecord,
        client: IpAddr,
    ) -> Response<Bytes> {
        let form: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let Some(kind) = form["kind"].as_str().and_then(store::KeyKind::parse) else {
            return bad_request("kind is openpgp or smime");
        };
        match self.jmap.store().remove_public_key(account.id, kind).await {
            Ok(true) => {
                tracing::info!(account = %account.address, %client, kind = kind.as_str(), "webmail: public key withdrawn");
                json(StatusCode::OK, &json!({"withdrawn": kind.as_str()}))
            }
            Ok(false) => json(StatusCode::NOT_FOUND, &json!({"error": "no such key"})),
            Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n"),
        }
    }
}

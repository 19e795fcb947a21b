//! What each request is answered, by path: the one routes table of the
//! http and https listeners.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use net::Cidr;
use store::{AddressKind, Store};

use crate::autoconfig::{self, ClientService};
use crate::jmap::{JmapRoute, JmapRoutes};
use crate::query;

/// What the web side is told at start.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The name clients connect to (the certificate's name).
    pub hostname: String,
    /// The services this server offers mail clients, at their ports.
    pub services: Vec<ClientService>,
    /// Who may read `/metrics` (`[http] metrics_allow`).
    pub metrics_allow: Vec<Cidr>,
    /// Our MTA-STS policy (RFC 8461), served at `mta-sts.DOMAIN`.
    pub mta_sts: dns::mta_sts::Policy,
}

/// Renders the Prometheus text exposition of the server's metrics.
#[async_trait::async_trait]
pub trait MetricsSource: Send + Sync {
    async fn render(&self) -> String;
}

/// The http-01 challenges being answered (RFC 8555 §8.3): token → key
/// authorization, filled by the ACME client while an order is pending.
#[derive(Debug, Default)]
pub struct Http01(std::sync::RwLock<std::collections::HashMap<String, String>>);

impl Http01 {
    pub fn set(&self, token: &str, key_authorization: Option<&str>) {
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        match key_authorization {
            Some(k) => m.insert(token.to_string(), k.to_string()),
            None => m.remove(token),
        };
    }

    fn get(&self, token: &str) -> Option<String> {
        let m = self.0.read().unwrap_or_else(|p| p.into_inner());
        m.get(token).cloned()
    }
}

/// What a WebSocket handshake leads to: the 101 answer, the session and
/// the service; or the answer that refuses it.
pub type WsOpening =
    Result<(Response<Bytes>, jmap::websocket::WsSession, Arc<jmap::Jmap>), Response<Bytes>>;

/// The handler of every HTTP request.
pub struct Web {
    config: WebConfig,
    store: Arc<dyn Store>,
    metrics: Option<Arc<dyn MetricsSource>>,
    http01: Arc<Http01>,
    jmap: Option<JmapRoutes>,
    admin: Option<Arc<dyn crate::admin::AdminOps>>,
}

/// The routes, by name (the `route` label of `tern_http_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Metrics,
    Autoconfig,
    Autodiscover,
    Mobileconfig,
    MtaSts,
    AcmeChallenge,
    Wkd,
    NotFound,
}

impl Route {
    /// The route of a path: ASCII case-insensitive, since Outlook asks for
    /// `/Autodiscover/Autodiscover.xml` and others for the lower-case form.
    fn of(path: &str) -> Route {
        match path.to_ascii_lowercase().as_str() {
            "/metrics" => Route::Metrics,
            "/.well-known/autoconfig/mail/config-v1.1.xml" | "/mail/config-v1.1.xml" => {
                Route::Autoconfig
            }
            "/autodiscover/autodiscover.xml" => Route::Autodiscover,
            "/apple/mail.mobileconfig" => Route::Mobileconfig,
            "/.well-known/mta-sts.txt" => Route::MtaSts,
            p if p.starts_with("/.well-known/acme-challenge/") => Route::AcmeChallenge,
            p if p.starts_with("/.well-known/openpgpkey/") => Route::Wkd,
            _ => Route::NotFound,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Route::Metrics => "metrics",
            Route::Autoconfig => "autoconfig",
            Route::Autodiscover => "autodiscover",
            Route::Mobileconfig => "mobileconfig",
            Route::MtaSts => "mta-sts",
            Route::AcmeChallenge => "acme-challenge",
            Route::Wkd => "wkd",
            Route::NotFound => "none",
        }
    }

    /// The methods a route answers (HEAD wherever GET is).
    fn allows(self, method: &Method) -> bool {
        match self {
            // Outlook POSTs its request; some clients probe with GET first.
            Route::Autodiscover => matches!(*method, Method::POST | Method::GET | Method::HEAD),
            _ => matches!(*method, Method::GET | Method::HEAD),
        }
    }
}

impl Web {
    pub fn new(
        config: WebConfig,
        store: Arc<dyn Store>,
        metrics: Option<Arc<dyn MetricsSource>>,
    ) -> Web {
        Web {
            config,
            store,
            metrics,
            http01: Arc::default(),
            jmap: None,
            admin: None,
        }
    }

    /// Serve JMAP (RFC 8620) on these listeners.
    pub fn with_jmap(mut self, jmap: JmapRoutes) -> Web {
        self.jmap = Some(jmap);
        self
    }

    /// Serve the web admin at `/admin` (needs JMAP's sessions: the
    /// administrator signs in as any webmail user does).
    pub fn with_admin(mut self, ops: Arc<dyn crate::admin::AdminOps>) -> Web {
        self.admin = Some(ops);
        self
    }

    /// Answer the http-01 challenges `http01` holds (ACME, RFC 8555 §8.3).
    pub fn with_http01(mut self, http01: Arc<Http01>) -> Web {
        self.http01 = http01;
        self
    }

    /// The JMAP event stream (RFC 8620 §7.3) if `req` asks for it: a
    /// response whose body stays open.
    pub async fn event_source(
        &self,
        req: &Request<Bytes>,
        client: IpAddr,
    ) -> Option<Result<Response<crate::eventsource::ChannelBody>, Response<Bytes>>> {
        let jmap = self.jmap.as_ref()?;
        (req.uri().path() == "/jmap/eventsource").then_some(())?;
        let result = jmap.event_source(req, client).await;
        count(
            "jmap-eventsource",
            match &result {
                Ok(r) => r.status(),
                Err(r) => r.status(),
            },
        );
        Some(result)
    }

    /// For a JMAP API request or upload (the routes with a body), before
    /// the body is read: the admission, or the answer that refuses it.
    pub async fn admit(
        &self,
        req: &Request<Bytes>,
        client: IpAddr,
    ) -> Option<Result<crate::jmap::Admission, Response<Bytes>>> {
        let jmap = self.jmap.as_ref()?;
        let route = JmapRoute::of(req.uri().path()).filter(|r| {
            matches!(r, JmapRoute::Api | JmapRoute::Upload) && r.allows(req.method())
        })?;
        let result = jmap.admit(route, req, client).await;
        if let Err(r) = &result {
            count(route.name(), r.status());
        }
        Some(result)
    }

    /// A JMAP WebSocket (RFC 8887) if `req` asks for one: the 101 answer,
    /// the connection's session and the JMAP service it runs on.
    pub async fn websocket(&self, req: &Request<Bytes>, client: IpAddr) -> Option<WsOpening> {
        let jmap = self.jmap.as_ref()?;
        (req.uri().path() == crate::websocket::PATH).then_some(())?;
        let result = jmap
            .websocket(req, client)
            .await
            .map(|(answer, session)| (answer, session, jmap.jmap.clone()));
        count(
            "jmap-websocket",
            match &result {
                Ok((r, ..)) => r.status(),
                Err(r) => r.status(),
            },
        );
        Some(result)
    }

    /// The answer to one request from `client`; the body is already read
    /// (and bounded) by the server.
    pub async fn respond(&self, req: Request<Bytes>, client: IpAddr) -> Response<Bytes> {
        if let (Some(ops), Some(jmap), Some(route)) = (
            &self.admin,
            &self.jmap,
            crate::admin::AdminRoute::of(req.uri().path()),
        ) {
            let response = crate::admin::respond(ops, jmap, route, &req, client).await;
            return counted(route.name(), response);
        }
        if let (Some(jmap), Some(route)) = (
            &self.jmap,
            crate::webmail::WebmailRoute::of(req.uri().path()),
        ) {
            return counted(route.name(), jmap.webmail(route, &req, client).await);
        }
        if let (Some(jmap), Some(route)) = (&self.jmap, JmapRoute::of(req.uri().path())) {
            let response = if route.allows(req.method()) {
                jmap.respond(route, &req, client).await
            } else {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            };
            return counted(route.name(), response);
        }
        let route = Route::of(req.uri().path());
        let response = if !route.allows(req.method()) {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            let allow = match route {
                Route::Autodiscover => "GET, HEAD, POST",
                _ => "GET, HEAD",
            };
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            r
        } else {
            match route {
                Route::Metrics => self.metrics(client).await,
                Route::Autoconfig => self.autoconfig(&req).await,
                Route::Autodiscover => self.autodiscover(&req).await,
                Route::Mobileconfig => self.mobileconfig(&req).await,
                Route::MtaSts => self.mta_sts(&req).await,
                Route::AcmeChallenge => self.acme_challenge(req.uri().path()),
                Route::Wkd => self.wkd(&req).await,
                Route::NotFound => text(StatusCode::NOT_FOUND, "not found\n"),
            }
        };
        counted(route.name(), response)
    }

    /// RFC 8555 §8.3: `/.well-known/acme-challenge/TOKEN` answers the key
    /// authorization of a pending challenge, as is (the path's case kept).
    fn acme_challenge(&self, path: &str) -> Response<Bytes> {
        let token = path.rsplit('/').next().unwrap_or_default();
        match self.http01.get(token) {
            Some(key_authorization) => {
                let mut r = Response::new(Bytes::from(key_authorization));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                r
            }
            None => text(StatusCode::NOT_FOUND, "no such challenge\n"),
        }
    }

    /// `/metrics`: the Prometheus text format, to `[http] metrics_allow` only.
    async fn metrics(&self, client: IpAddr) -> Response<Bytes> {
        let Some(source) = &self.metrics else {
            return text(StatusCode::NOT_FOUND, "not found\n");
        };
        if !self.config.metrics_allow.iter().any(|c| c.contains(client)) {
            return text(StatusCode::FORBIDDEN, "forbidden\n");
        }
        let mut r = Response::new(Bytes::from(source.render().await));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        r
    }

    /// Thunderbird's autoconfig: the domain from `emailaddress=`, else from
    /// the host name `autoconfig.DOMAIN` the request was sent to.
    async fn autoconfig(&self, req: &Request<Bytes>) -> Response<Bytes> {
        let domain = match query::param(req.uri().query(), "emailaddress") {
            Some(address) => match address.rsplit_once('@') {
                Some((_, domain)) => domain.to_ascii_lowercase(),
                None => return text(StatusCode::BAD_REQUEST, "emailaddress is not an address\n"),
            },
            None => match host(req).and_then(|h| h.strip_prefix("autoconfig.").map(str::to_string))
            {
                Some(domain) => domain,
                None => return text(StatusCode::BAD_REQUEST, "emailaddress is missing\n"),
            },
        };
        match self.serves_domain(&domain).await {
            Ok(true) => xml(
                "application/xml",
                autoconfig::thunderbird(&domain, &self.config.hostname, &self.config.services),
            ),
            Ok(false) => text(StatusCode::NOT_FOUND, "not a domain of this server\n"),
            Err(r) => r,
        }
    }

    /// Microsoft's autodiscover (POX): the address from the request body.
    async fn autodiscover(&self, req: &Request<Bytes>) -> Response<Bytes> {
        let address = std::str::from_utf8(req.body())
            .ok()
            .and_then(autoconfig::autodiscover_request_address)
            .or_else(|| query::param(req.uri().query(), "emailaddress"));
        let Some(address) = address else {
            return text(StatusCode::BAD_REQUEST, "no EMailAddress in the request\n");
        };
        match self.checked_address(&address).await {
            Ok(address) => xml(
                "application/xml",
                autoconfig::autodiscover(&address, &self.config.hostname, &self.config.services),
            ),
            Err(r) => r,
        }
    }

    /// An Apple configuration profile for `emailaddress=`.
    async fn mobileconfig(&self, req: &Request<Bytes>) -> Response<Bytes> {
        let Some(address) = query::param(req.uri().query(), "emailaddress") else {
            return text(StatusCode::BAD_REQUEST, "emailaddress is missing\n");
        };
        let address = match self.checked_address(&address).await {
            Ok(a) => a,
            Err(r) => return r,
        };
        let hostname = &self.config.hostname;
        match autoconfig::mobileconfig(&address, hostname, &self.config.services) {
            Some(doc) => {
                let mut r = xml("application/x-apple-aspen-config", doc);
                let file = format!(
                    "attachment; filename=\"{}.mobileconfig\"",
                    safe_file_name(&address)
                );
                if let Ok(v) = HeaderValue::from_str(&file) {
                    r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
                }
                r
            }
            None => text(
                StatusCode::NOT_FOUND,
                "this server offers no IMAP or POP3 with submission to configure\n",
            ),
        }
    }

    /// RFC 8461 §3.2: our policy, at `https://mta-sts.DOMAIN/.well-known/
    /// mta-sts.txt` for each DOMAIN we serve (over plain http too: a
    /// sender only believes it over https with a valid certificate).
    async fn mta_sts(&self, req: &Request<Bytes>) -> Response<Bytes> {
        let domain = host(req).and_then(|h| h.strip_prefix("mta-sts.").map(str::to_string));
        let Some(domain) = domain else {
            return text(StatusCode::NOT_FOUND, "not found\n");
        };
        match self.serves_domain(&domain).await {
            Ok(true) => {
                let mut r = Response::new(Bytes::from(self.config.mta_sts.text()));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                r
            }
            Ok(false) => text(StatusCode::NOT_FOUND, "not a domain of this server\n"),
            Err(r) => r,
        }
    }

    /// The Web Key Directory (draft-koch-openpgp-webkey-service §3.1): a
    /// user's published OpenPGP key by the z-base-32 SHA-1 of their local
    /// part, by the advanced method (`openpgpkey.DOMAIN/.well-known/
    /// openpgpkey/DOMAIN/hu/HASH`) or the direct one (`DOMAIN/.well-known/
    /// openpgpkey/hu/HASH`), and the (empty) `policy` file of each of our
    /// domains, which says a directory is there.
    async fn wkd(&self, req: &Request<Bytes>) -> Response<Bytes> {
        let rest = req
            .uri()
            .path()
            .trim_start_matches("/.well-known/openpgpkey/");
        let parts: Vec<&str> = rest.split('/').collect();
        let (domain, hash) = match parts.as_slice() {
            ["policy"] => (host(req), None),
            ["hu", hash] => (host(req), Some(*hash)),
            [domain, "policy"] => (Some(domain.to_ascii_lowercase()), None),
            [domain, "hu", hash] => (Some(domain.to_ascii_lowercase()), Some(*hash)),
            _ => return text(StatusCode::NOT_FOUND, "not found\n"),
        };
        let Some(domain) = domain else {
            return text(StatusCode::NOT_FOUND, "not found\n");
        };
        match self.serves_domain(&domain).await {
            Ok(true) => {}
            Ok(false) => return text(StatusCode::NOT_FOUND, "not a domain of this server\n"),
            Err(r) => return r,
        }
        let body = match hash {
            None => Bytes::new(),
            Some(hash) => match self.wkd_key(&domain, hash).await {
                Ok(Some(key)) => Bytes::from(key),
                Ok(None) => return text(StatusCode::NOT_FOUND, "no key published\n"),
                Err(r) => return r,
            },
        };
        let mut r = Response::new(body);
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        r
    }

    /// The OpenPGP key published in `domain` whose local part hashes to
    /// `hash`.
    async fn wkd_key(&self, domain: &str, hash: &str) -> Result<Option<Vec<u8>>, Response<Bytes>> {
        let keys = self
            .store
            .domain_public_keys(domain, store::KeyKind::OpenPgp)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "store unavailable for a WKD request");
                text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n")
            })?;
        Ok(keys.into_iter().find_map(|(address, key)| {
            let local = address.rsplit_once('@')?.0;
            (policy::openpgp::wkd_hash(local) == hash).then_some(key.data)
        }))
    }

    /// An address of one of our domains, lower-cased domain; whether the
    /// account exists is not told (the answer is the same for every
    /// address of the domain).
    async fn checked_address(&self, address: &str) -> Result<String, Response<Bytes>> {
        let bad = || text(StatusCode::BAD_REQUEST, "not a mail address\n");
        if address.len() > 254 || address.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad());
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(bad());
        };
        if local.is_empty() || domain.is_empty() {
            return Err(bad());
        }
        let domain = domain.to_ascii_lowercase();
        match self.serves_domain(&domain).await? {
            true => Ok(format!("{local}@{domain}")),
            false => Err(text(StatusCode::NOT_FOUND, "not a domain of this server\n")),
        }
    }

    async fn serves_domain(&self, domain: &str) -> Result<bool, Response<Bytes>> {
        match self
            .store
            .lookup_address(&format!("postmaster@{domain}"))
            .await
        {
            Ok(AddressKind::NotLocal) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => {
                tracing::warn!(error = %e, "store unavailable for an HTTP request");
                Err(text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n"))
            }
        }
    }
}

/// The host the request was sent to, lower-case, without a port.
fn host(req: &Request<Bytes>) -> Option<String> {
    let raw = match req.uri().host() {
        Some(h) => h.to_string(),
        None => req.headers().get(header::HOST)?.to_str().ok()?.to_string(),
    };
    let name = match raw.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => raw.as_str(),
    };
    Some(name.trim_end_matches('.').to_ascii_lowercase())
}

/// Letters, digits and `.-_@+` of a name; anything else becomes `_`.
fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || ".-_@+".contains(c) => c,
            _ => '_',
        })
        .collect()
}

/// Count one answer in `tern_http_requests_total` by route and status.
fn count(route: &'static str, status: StatusCode) {
    metrics::counter!(
        "tern_http_requests_total",
        "route" => route,
        "status" => status.as_str().to_string()
    )
    .increment(1);
}

/// A response, counted.
fn counted<B>(route: &'static str, response: Response<B>) -> Response<B> {
    count(route, response.status());
    response
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from_static(body.as_bytes()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn xml(content_type: &'static str, body: String) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

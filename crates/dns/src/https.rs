//! One HTTPS request to a host found in DNS, with a certificate checked
//! by the given TLS client, HTTP/1.1, no redirects followed, the answer's
//! body bounded: what the MTA-STS policy fetch (RFC 8461 §3.3) and TLS
//! reports to https endpoints (RFC 8460 §3) need.

use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use tokio::net::TcpStream;

use crate::Resolver;

/// What the server answered: status, Content-Type (lower case), body.
pub struct Answer {
    pub status: http::StatusCode,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// A request: method, path, and for a POST the body with its media type.
pub struct Ask<'a> {
    pub method: http::Method,
    pub path: &'a str,
    pub body: Option<(&'a str, Vec<u8>)>,
    /// Further header fields (name, value).
    pub headers: &'a [(&'static str, String)],
    /// The most octets of the answer's body read.
    pub max_answer: usize,
}

/// `ask` of `host` (a name, or an IP address) on `port`, trying each of
/// its addresses in turn.
pub async fn request(
    resolver: &Resolver,
    host: &str,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    ask: &Ask<'_>,
) -> Result<Answer, String> {
    let addresses = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => resolver.addresses(host).await.map_err(|e| e.to_string())?,
    };
    let mut last = format!("{host}: no address");
    for ip in addresses {
        match once(host, ip, port, tls.clone(), ask).await {
            Ok(answer) => return Ok(answer),
            Err(e) => last = format!("{host} [{ip}]: {e}"),
        }
    }
    Err(last)
}

async fn once(
    host: &str,
    ip: std::net::IpAddr,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    ask: &Ask<'_>,
) -> Result<Answer, String> {
    let tcp = TcpStream::connect((ip, port))
        .await
        .map_err(|e| e.to_string())?;
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let mut request = http::Request::builder()
        .method(ask.method.clone())
        .uri(ask.path)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, "Tern");
    for (name, value) in ask.headers {
        request = request.header(*name, value.as_str());
    }
    let body = match &ask.body {
        Some((media, bytes)) => {
            request = request.header(http::header::CONTENT_TYPE, *media);
            bytes.clone()
        }
        None => Vec::new(),
    };
    let request = request
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let result = match sender.send_request(request).await {
        Ok(r) => {
            let status = r.status();
            let content_type = r
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            match Limited::new(r.into_body(), ask.max_answer).collect().await {
                Ok(body) => Ok(Answer {
                    status,
                    content_type,
                    body: body.to_bytes().to_vec(),
                }),
                Err(_) => Err(format!("an answer over {} octets", ask.max_answer)),
            }
        }
        Err(e) => Err(e.to_string()),
    };
    driver.abort();
    result
}

/// The host, port (443 unless given) and path of an `https:` URL.
pub fn parts(url: &str) -> Option<(String, u16, String)> {
    let uri: http::Uri = url.parse().ok()?;
    if uri.scheme_str() != Some("https") {
        return None;
    }
    let host = uri.host()?.trim_matches(['[', ']']).to_string();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    Some((host, uri.port_u16().unwrap_or(443), path))
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_parts() {
        assert_eq!(
            super::parts("https://r.a.test/tlsrpt?x=1"),
            Some(("r.a.test".into(), 443, "/tlsrpt?x=1".into()))
        );
        assert_eq!(
            super::parts("https://r.a.test:8443"),
            Some(("r.a.test".into(), 8443, "/".into()))
        );
        assert_eq!(super::parts("http://r.a.test/"), None);
        assert_eq!(super::parts("mailto:x@a.test"), None);
    }
}

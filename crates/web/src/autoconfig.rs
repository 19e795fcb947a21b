//! Client autoconfiguration: what a mail client is told so the user types
//! only an address and a password. The same list of services feeds the
//! RFC 6186 SRV records `tern dns records` prints, Thunderbird's autoconfig
//! (config-v1.1), Microsoft's autodiscover (POX) and Apple's profiles, so
//! the four never disagree.

use message::xml::escape as xml;
use sha2::{Digest, Sha256};

/// What a client does with a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    Imap,
    Pop3,
    Submission,
}

/// How a service starts TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceTls {
    /// TLS from the first byte (RFC 8314): preferred.
    Implicit,
    /// Plaintext, then STARTTLS/STLS (RFC 3207, RFC 2595).
    StartTls,
}

/// One service a client may use, at the port this server listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientService {
    pub kind: ServiceKind,
    pub tls: ServiceTls,
    pub port: u16,
}

impl ClientService {
    /// The RFC 6186 §3 service label (`_imaps` and `_submissions`: RFC 8314 §5.1).
    pub fn srv_label(&self) -> &'static str {
        match (self.kind, self.tls) {
            (ServiceKind::Imap, ServiceTls::Implicit) => "_imaps",
            (ServiceKind::Imap, ServiceTls::StartTls) => "_imap",
            (ServiceKind::Pop3, ServiceTls::Implicit) => "_pop3s",
            (ServiceKind::Pop3, ServiceTls::StartTls) => "_pop3",
            (ServiceKind::Submission, ServiceTls::Implicit) => "_submissions",
            (ServiceKind::Submission, ServiceTls::StartTls) => "_submission",
        }
    }
}

/// The services of one kind, implicit TLS first (RFC 8314 §3: preferred).
fn of_kind(services: &[ClientService], kind: ServiceKind) -> impl Iterator<Item = &ClientService> {
    let mut found: Vec<&ClientService> = services.iter().filter(|s| s.kind == kind).collect();
    found.sort_by_key(|s| s.tls != ServiceTls::Implicit);
    found.into_iter()
}

/// Thunderbird's autoconfig file (config-v1.1.xml) for a domain: every
/// incoming service (IMAP before POP3) and every submission port, the
/// whole address as user name, the password sent over TLS only.
pub fn thunderbird(domain: &str, hostname: &str, services: &[ClientService]) -> String {
    let (domain, host) = (xml(domain), xml(hostname));
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <clientConfig version=\"1.1\">\n\
         \x20 <emailProvider id=\"{domain}\">\n\
         \x20   <domain>{domain}</domain>\n\
         \x20   <displayName>{domain}</displayName>\n\
         \x20   <displayShortName>{domain}</displayShortName>\n"
    );
    let incoming = of_kind(services, ServiceKind::Imap).chain(of_kind(services, ServiceKind::Pop3));
    for s in incoming {
        let kind = if s.kind == ServiceKind::Imap {
            "imap"
        } else {
            "pop3"
        };
        out += &server_block("incomingServer", kind, &host, s);
    }
    for s in of_kind(services, ServiceKind::Submission) {
        out += &server_block("outgoingServer", "smtp", &host, s);
    }
    out += "  </emailProvider>\n</clientConfig>\n";
    out
}

fn server_block(element: &str, kind: &str, host: &str, s: &ClientService) -> String {
    let socket = match s.tls {
        ServiceTls::Implicit => "SSL",
        ServiceTls::StartTls => "STARTTLS",
    };
    format!(
        "    <{element} type=\"{kind}\">\n\
         \x20     <hostname>{host}</hostname>\n\
         \x20     <port>{port}</port>\n\
         \x20     <socketType>{socket}</socketType>\n\
         \x20     <authentication>password-cleartext</authentication>\n\
         \x20     <username>%EMAILADDRESS%</username>\n\
         \x20   </{element}>\n",
        port = s.port
    )
}

/// The address in an autodiscover request (`<EMailAddress>` of the
/// Outlook request schema), entity references decoded.
pub fn autodiscover_request_address(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let start = lower.find("<emailaddress>")? + "<emailaddress>".len();
    let end = start + lower[start..].find("</emailaddress>")?;
    let text = body[start..end].trim();
    Some(
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// Microsoft's autodiscover answer (POX, the Outlook response schema
/// 2006a): one `<Protocol>` per IMAP, POP3 and SMTP service.
pub fn autodiscover(address: &str, hostname: &str, services: &[ClientService]) -> String {
    let (address, host) = (xml(address), xml(hostname));
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n\
         \x20 <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n\
         \x20   <Account>\n\
         \x20     <AccountType>email</AccountType>\n\
         \x20     <Action>settings</Action>\n",
    );
    let all = of_kind(services, ServiceKind::Imap)
        .chain(of_kind(services, ServiceKind::Pop3))
        .chain(of_kind(services, ServiceKind::Submission));
    for s in all {
        let kind = match s.kind {
            ServiceKind::Imap => "IMAP",
            ServiceKind::Pop3 => "POP3",
            ServiceKind::Submission => "SMTP",
        };
        let encryption = match s.tls {
            ServiceTls::Implicit => "SSL",
            ServiceTls::StartTls => "TLS",
        };
        out += &format!(
            "      <Protocol>\n\
             \x20       <Type>{kind}</Type>\n\
             \x20       <Server>{host}</Server>\n\
             \x20       <Port>{port}</Port>\n\
             \x20       <LoginName>{address}</LoginName>\n\
             \x20       <SPA>off</SPA>\n\
             \x20       <Encryption>{encryption}</Encryption>\n\
             \x20       <AuthRequired>on</AuthRequired>\n\
             \x20     </Protocol>\n",
            port = s.port
        );
    }
    out += "    </Account>\n  </Response>\n</Autodiscover>\n";
    out
}

/// An Apple configuration profile (`.mobileconfig`, a property list) with
/// one mail account: the first IMAP service (POP3 when there is no IMAP)
/// and the first submission service. None when either is missing. The
/// profile's ids are derived from the address, so downloading it again
/// replaces the account rather than adding a second one.
pub fn mobileconfig(address: &str, hostname: &str, services: &[ClientService]) -> Option<String> {
    let incoming = of_kind(services, ServiceKind::Imap)
        .next()
        .or_else(|| of_kind(services, ServiceKind::Pop3).next())?;
    let outgoing = of_kind(services, ServiceKind::Submission).next()?;
    let account_type = match incoming.kind {
        ServiceKind::Pop3 => "EmailTypePOP",
        _ => "EmailTypeIMAP",
    };
    let reverse_host: Vec<&str> = hostname.rsplit('.').collect();
    let id = xml(&format!("{}.tern.mail", reverse_host.join(".")));
    let (addr, host) = (xml(address), xml(hostname));
    let profile_uuid = uuid_from(&format!("profile:{hostname}:{address}"));
    let account_uuid = uuid_from(&format!("account:{hostname}:{address}"));
    Some(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>EmailAccountDescription</key><string>{addr}</string>
      <key>EmailAccountType</key><string>{account_type}</string>
      <key>EmailAddress</key><string>{addr}</string>
      <key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>IncomingMailServerHostName</key><string>{host}</string>
      <key>IncomingMailServerPortNumber</key><integer>{in_port}</integer>
      <key>IncomingMailServerUseSSL</key><true/>
      <key>IncomingMailServerUsername</key><string>{addr}</string>
      <key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>OutgoingMailServerHostName</key><string>{host}</string>
      <key>OutgoingMailServerPortNumber</key><integer>{out_port}</integer>
      <key>OutgoingMailServerUseSSL</key><true/>
      <key>OutgoingMailServerUsername</key><string>{addr}</string>
      <key>OutgoingPasswordSameAsIncomingPassword</key><true/>
      <key>PayloadDisplayName</key><string>{addr}</string>
      <key>PayloadIdentifier</key><string>{id}.account.{account_uuid}</string>
      <key>PayloadType</key><string>com.apple.mail.managed</string>
      <key>PayloadUUID</key><string>{account_uuid}</string>
      <key>PayloadVersion</key><integer>1</integer>
    </dict>
  </array>
  <key>PayloadDisplayName</key><string>Mail: {addr}</string>
  <key>PayloadIdentifier</key><string>{id}.{profile_uuid}</string>
  <key>PayloadType</key><string>Configuration</string>
  <key>PayloadUUID</key><string>{profile_uuid}</string>
  <key>PayloadVersion</key><integer>1</integer>
</dict>
</plist>
"#,
        in_port = incoming.port,
        out_port = outgoing.port,
    ))
}

/// A UUID (RFC 9562 version 8, name-based by SHA-256) for `name`.
fn uuid_from(name: &str) -> String {
    let mut b: [u8; 16] = Sha256::digest(name.as_bytes())[..16]
        .try_into()
        .unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services() -> Vec<ClientService> {
        vec![
            ClientService {
                kind: ServiceKind::Submission,
                tls: ServiceTls::StartTls,
                port: 587,
            },
            ClientService {
                kind: ServiceKind::Imap,
                tls: ServiceTls::StartTls,
                port: 143,
            },
            ClientService {
                kind: ServiceKind::Imap,
                tls: ServiceTls::Implicit,
                port: 993,
            },
            ClientService {
                kind: ServiceKind::Submission,
                tls: ServiceTls::Implicit,
                port: 465,
            },
            ClientService {
                kind: ServiceKind::Pop3,
                tls: ServiceTls::Implicit,
                port: 995,
            },
        ]
    }

    #[test]
    fn thunderbird_lists_implicit_tls_first_and_imap_before_pop3() {
        let doc = thunderbird("example.org", "mx.example.org", &services());
        let ports: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.trim().strip_prefix("<port>"))
            .map(|l| l.trim_end_matches("</port>"))
            .collect();
        assert_eq!(ports, ["993", "143", "995", "465", "587"]);
        assert!(doc.contains("<emailProvider id=\"example.org\">"));
        assert!(doc.contains("<socketType>STARTTLS</socketType>"));
        assert!(doc.contains("<username>%EMAILADDRESS%</username>"));
    }

    #[test]
    fn autodiscover_reads_the_request_and_escapes_the_answer() {
        let body = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress> a&amp;b@example.org </EMailAddress></Request></Autodiscover>";
        let address = autodiscover_request_address(body);
        assert_eq!(address.as_deref(), Some("a&b@example.org"));
        let doc = autodiscover("a&b@example.org", "mx.example.org", &services());
        assert!(doc.contains("<LoginName>a&amp;b@example.org</LoginName>"));
        assert_eq!(doc.matches("<Protocol>").count(), 5);
        assert!(doc.contains("<Type>SMTP</Type>"));
        assert_eq!(autodiscover_request_address("<Request/>"), None);
    }

    #[test]
    fn mobileconfig_prefers_imaps_and_submissions_and_has_stable_ids() {
        let doc = mobileconfig("j@example.org", "mx.example.org", &services()).unwrap_or_default();
        assert!(doc.contains("<key>IncomingMailServerPortNumber</key><integer>993</integer>"));
        assert!(doc.contains("<key>OutgoingMailServerPortNumber</key><integer>465</integer>"));
        assert!(doc.contains("<string>EmailTypeIMAP</string>"));
        assert!(doc.contains("org.example.mx.tern.mail"));
        let again = mobileconfig("j@example.org", "mx.example.org", &services());
        assert_eq!(Some(doc.clone()), again);
        let other =
            mobileconfig("k@example.org", "mx.example.org", &services()).unwrap_or_default();
        assert_ne!(doc, other);
        let no_submission: Vec<ClientService> = services()
            .into_iter()
            .filter(|s| s.kind != ServiceKind::Submission)
            .collect();
        assert_eq!(mobileconfig("j@example.org", "mx", &no_submission), None);
    }

    #[test]
    fn uuids_have_version_8_and_the_rfc_variant() {
        let u = uuid_from("x");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "8");
        assert!(matches!(&u[19..20], "8" | "9" | "A" | "B"));
    }

    #[test]
    fn srv_labels_follow_rfc_6186_and_8314() {
        let labels: Vec<&str> = services().iter().map(ClientService::srv_label).collect();
        assert_eq!(
            labels,
            ["_submission", "_imap", "_imaps", "_submissions", "_pop3s"]
        );
    }
}

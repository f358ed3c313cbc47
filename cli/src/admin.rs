//! The `musubi` commands that drive an admin API (a security server's or
//! the central server's, port 4000): setting a server up and registering it,
//! and deciding registration requests.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use musubi_admin::client::AdminClient;
use serde_json::{Value, json};

/// Where the admin API is and how to reach it: flags, else the environment,
/// else a profile of the profile file (see [`Profiles`]), else the local
/// server's default address.
#[derive(Args, Debug, Clone)]
pub struct Endpoint {
    /// The admin API [default: https://127.0.0.1:4000]
    #[arg(long, global = true, env = "MUSUBI_SERVER")]
    pub server: Option<String>,
    /// The admin API's certificate (PEM; `state_dir/admin/admin-tls.pem`), which
    /// must be the one the server presents.
    #[arg(long, global = true, env = "MUSUBI_SERVER_CERT")]
    pub server_cert: Option<PathBuf>,
    /// A file holding the API key (`state_dir/admin/admin-api-key`); or set MUSUBI_API_KEY.
    #[arg(long, global = true, env = "MUSUBI_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// A profile of the profile file ($MUSUBI_CONFIG, else
    /// ~/.config/musubi/config.toml) naming server, server_cert and api_key_file.
    #[arg(long, global = true, env = "MUSUBI_PROFILE")]
    pub profile: Option<String>,
    /// Print answers as JSON.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    pub output: String,
}

/// The profile file: named endpoints, so that `--profile central` (or
/// `MUSUBI_PROFILE`, or `default_profile`) stands for three flags.
///
/// ```toml
/// default_profile = "ss1"
/// [profiles.ss1]
/// server = "https://127.0.0.1:4000"
/// server_cert = "/var/lib/musubi/admin/admin-tls.pem"
/// api_key_file = "/var/lib/musubi/admin/admin-api-key"
/// ```
#[derive(serde::Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    /// The profile used when none is named.
    pub default_profile: Option<String>,
    /// The profiles by name.
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, Profile>,
}

/// One profile.
#[derive(serde::Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The admin API's URL.
    pub server: Option<String>,
    /// Its certificate (PEM).
    pub server_cert: Option<PathBuf>,
    /// The API key's file.
    pub api_key_file: Option<PathBuf>,
}

/// The largest profile file read.
const MAX_PROFILE_FILE: u64 = 64 * 1024;

impl Profiles {
    /// Where the profile file is: `$MUSUBI_CONFIG`, else
    /// `$XDG_CONFIG_HOME/musubi/config.toml`, else `~/.config/musubi/config.toml`.
    pub fn path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("MUSUBI_CONFIG") {
            return Some(PathBuf::from(p));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("musubi").join("config.toml"))
    }

    /// Reads the profile file at `path`; none there is no profiles.
    pub fn read(path: &Path) -> Result<Self> {
        let Ok(meta) = std::fs::metadata(path) else { return Ok(Self::default()) };
        anyhow::ensure!(
            meta.len() <= MAX_PROFILE_FILE,
            "the profile file {} is larger than {MAX_PROFILE_FILE} bytes; it holds a few profiles only",
            path.display()
        );
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| {
            format!(
                "the profile file {} is not valid (expected default_profile and [profiles.NAME] tables \
                 with server, server_cert, api_key_file)",
                path.display()
            )
        })
    }

    /// The profile named, or the default one; an unknown name is an error.
    fn pick(&self, name: Option<&str>, path: &Path) -> Result<Profile> {
        match name.or(self.default_profile.as_deref()) {
            None => Ok(Profile::default()),
            Some(n) => self.profiles.get(n).cloned().with_context(|| {
                let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
                format!(
                    "no profile {n:?} in {} (it has: {}); add a [profiles.{n}] table or name another",
                    path.display(),
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )
            }),
        }
    }
}

impl Endpoint {
    /// This endpoint with what flags and environment left open taken from the
    /// profile file.
    pub fn resolved(&self) -> Result<Self> {
        let mut ep = self.clone();
        if ep.server.is_some() && ep.server_cert.is_some() && ep.api_key_file.is_some() && ep.profile.is_none() {
            return Ok(ep);
        }
        let profile = match Profiles::path() {
            Some(path) => Profiles::read(&path)?.pick(ep.profile.as_deref(), &path)?,
            None if ep.profile.is_some() => anyhow::bail!("--profile needs a profile file: set MUSUBI_CONFIG or HOME"),
            None => Profile::default(),
        };
        ep.server = ep.server.or(profile.server);
        ep.server_cert = ep.server_cert.or(profile.server_cert);
        ep.api_key_file = ep.api_key_file.or(profile.api_key_file);
        Ok(ep)
    }

    /// A client for this endpoint.
    pub fn client(&self) -> Result<AdminClient> {
        let ep = self.resolved()?;
        let cert_path = ep.server_cert.as_deref().context(
            "name the admin API's certificate with --server-cert FILE (or MUSUBI_SERVER_CERT, or a profile); \
             it is state_dir/admin/admin-tls.pem on the server",
        )?;
        let cert = read_pem(cert_path, "CERTIFICATE")?;
        let key = match (&ep.api_key_file, std::env::var("MUSUBI_API_KEY")) {
            (Some(f), _) => std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
            (None, Ok(k)) => k,
            (None, Err(_)) => anyhow::bail!(
                "no API key: use --api-key-file FILE (state_dir/admin/admin-api-key), set MUSUBI_API_KEY, \
                 or name a profile with --profile"
            ),
        };
        let key = key.trim();
        anyhow::ensure!(
            !key.is_empty() && key.len() <= 256 && key.bytes().all(|b| b.is_ascii_graphic()),
            "the API key file does not hold an API key (one line of printable characters)"
        );
        Ok(AdminClient::new(ep.server.as_deref().unwrap_or("https://127.0.0.1:4000"), cert, key))
    }
}

/// The exit codes scripts can rely on.
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// Failed for another reason: a local file, a check that did not pass.
    pub const FAILED: u8 = 1;
    /// The command line was not understood (clap's own code).
    pub const USAGE: u8 = 2;
    /// The server could not be reached (connection, TLS, the pinned certificate, time-out).
    pub const UNREACHABLE: u8 = 3;
    /// The API key is missing or unknown (401), or lacks the role (403).
    pub const NOT_ALLOWED: u8 = 4;
    /// No such object (404).
    pub const NOT_FOUND: u8 = 5;
    /// Refused: a field is wrong, or the request does not fit the server's state (400, 409, 413, 415, 422).
    pub const REFUSED: u8 = 6;
    /// Too many requests with this key (429): retry later.
    pub const RATE_LIMITED: u8 = 7;
    /// The server failed (5xx); its log says why.
    pub const SERVER_FAILED: u8 = 8;
}

/// The exit code for an error, and a hint for what to do.
pub fn exit_code(e: &anyhow::Error) -> (u8, Option<&'static str>) {
    use musubi_admin::client::ClientError;
    let Some(client) = e.chain().find_map(|c| c.downcast_ref::<ClientError>()) else { return (exit::FAILED, None) };
    match client.status() {
        None => (exit::UNREACHABLE, Some("is the server running at --server, and is --server-cert its admin-tls.pem?")),
        Some(401) => (exit::NOT_ALLOWED, Some("check the API key (--api-key-file, MUSUBI_API_KEY or the profile)")),
        Some(403) => (exit::NOT_ALLOWED, Some("ask a system administrator for a key with that role")),
        Some(404) => (exit::NOT_FOUND, None),
        Some(429) => (exit::RATE_LIMITED, Some("wait the seconds named and retry")),
        Some(s) if s >= 500 => (exit::SERVER_FAILED, Some("the server's log has the details")),
        Some(_) => (exit::REFUSED, None),
    }
}

fn read_pem(path: &Path, label: &str) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    musubi_pki::pem_decode(label, &text).with_context(|| format!("{} holds no {label} PEM block", path.display()))
}

/// Key commands.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// The token's keys and certificates.
    List,
    /// Generate a key in the server's token.
    Generate {
        /// `auth` (the server's authentication key) or `sign` (a member's signing key).
        #[arg(long, value_parser = ["auth", "sign"])]
        role: String,
        /// A label for the key.
        #[arg(long)]
        label: Option<String>,
    },
    /// Make a certificate signing request for a key; give it to the CA.
    Csr {
        /// The key's id (from `keys generate` or `keys list`).
        key: String,
        /// For a signing key: the member it signs for (default: the server's owner).
        #[arg(long)]
        member: Option<String>,
        /// Where to write the CSR (PEM).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Certificate commands.
#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Import a certificate the CA issued for one of the token's keys.
    Import {
        /// The certificate (PEM).
        file: PathBuf,
    },
    /// Ask the central server to register the authentication certificate.
    Register {
        /// The certificate's hash (from `certs import` or `keys list`).
        hash: String,
        /// The address peers reach this server at (host name or IP).
        #[arg(long)]
        address: String,
    },
    /// Ask the central server to delete the registration of an authentication certificate.
    Unregister {
        /// The certificate's hash.
        hash: String,
    },
    /// Allow a certificate of the token to be used.
    Activate {
        /// The certificate's hash.
        hash: String,
    },
    /// Stop a certificate from being used (not one the running server uses).
    Disable {
        /// The certificate's hash.
        hash: String,
    },
}

/// Client commands.
#[derive(Subcommand, Debug)]
pub enum ClientsCommand {
    /// The server's clients and whether they are registered.
    List,
    /// Add a client (e.g. SUBSYSTEM:DEMO/GOV/1001/care) to the server.
    Add {
        /// The client.
        client: String,
    },
    /// Ask the central server to register a client on this server.
    Register {
        /// The client.
        client: String,
    },
    /// Remove a client (asking the central server to delete a registered one).
    Delete {
        /// The client.
        client: String,
    },
}

/// Registration-request commands (central server).
#[derive(Subcommand, Debug)]
pub enum RequestsCommand {
    /// Registration requests, newest first.
    List {
        /// Only pending ones.
        #[arg(long)]
        pending: bool,
    },
    /// Approve a pending request.
    Approve {
        /// Its id.
        id: i64,
    },
    /// Reject a pending request.
    Reject {
        /// Its id.
        id: i64,
        /// Why (recorded with the request).
        #[arg(long)]
        reason: String,
    },
}

fn print(output: &str, value: &Value, text: impl FnOnce(&Value) -> String) {
    if output == "json" {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
    } else {
        println!("{}", text(value));
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// `musubi init`.
pub async fn init(ep: &Endpoint, anchor: &Path, owner: &str, server_code: &str, pin_file: Option<&Path>) -> Result<()> {
    let anchor_xml = std::fs::read_to_string(anchor).with_context(|| format!("cannot read {}", anchor.display()))?;
    let pin = match pin_file {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        None => std::env::var("MUSUBI_TOKEN_PIN")
            .context("give the token PIN with --pin-file FILE or MUSUBI_TOKEN_PIN (never on the command line)")?,
    };
    let body = json!({ "anchor": anchor_xml, "owner": owner, "server_code": server_code,
                       "pin": pin.trim_end_matches(['\r', '\n']) });
    let v = ep.client()?.post("/api/v1/initialization", &body).await?;
    print(&ep.output, &v, |v| format!("initialised {}", s(&v["server_id"])));
    Ok(())
}

/// `musubi status`.
pub async fn status(ep: &Endpoint) -> Result<()> {
    let v = ep.client()?.get("/api/v1/status").await?;
    print(&ep.output, &v, |v| {
        let mut out = vec![format!(
            "server {}  initialised {}  running {}  registered {}  clients {}",
            s(&v["server_id"]),
            v["initialized"],
            v["running"],
            v["registered"],
            v["registered_clients"]
                .as_array()
                .map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        )];
        for a in v["alerts"].as_array().into_iter().flatten() {
            out.push(format!("{}: {}", s(&a["level"]), s(&a["text"])));
        }
        out.join("\n")
    });
    Ok(())
}

/// `musubi keys …`.
pub async fn keys(ep: &Endpoint, command: &KeysCommand) -> Result<()> {
    let client = ep.client()?;
    match command {
        KeysCommand::List => {
            let v = client.get("/api/v1/keys").await?;
            print(&ep.output, &v, |v| {
                let mut out = Vec::new();
                for k in v["keys"].as_array().into_iter().flatten() {
                    out.push(format!("key  {}  {}  {}", s(&k["id"]), s(&k["role"]), s(&k["label"])));
                }
                for c in v["certificates"].as_array().into_iter().flatten() {
                    out.push(format!(
                        "cert {}  key {}  {}  {}",
                        s(&c["hash"]),
                        s(&c["key_id"]),
                        s(&c["status"]),
                        s(&c["subject"])
                    ));
                }
                out.join("\n")
            });
        }
        KeysCommand::Generate { role, label } => {
            let v = client.post("/api/v1/keys", &json!({ "role": role, "label": label })).await?;
            print(&ep.output, &v, |v| format!("generated {} key {}", s(&v["role"]), s(&v["id"])));
        }
        KeysCommand::Csr { key, member, out } => {
            let v = client.post(&format!("/api/v1/keys/{key}/csr"), &json!({ "member": member })).await?;
            std::fs::write(out, s(&v["csr"])).with_context(|| format!("cannot write {}", out.display()))?;
            print(&ep.output, &v, |_| format!("CSR written to {}; give it to the CA", out.display()));
        }
    }
    Ok(())
}

/// `musubi certs …`.
pub async fn certs(ep: &Endpoint, command: &CertsCommand) -> Result<()> {
    let client = ep.client()?;
    match command {
        CertsCommand::Import { file } => {
            let pem = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            let v = client.post("/api/v1/certificates", &json!({ "certificate": pem })).await?;
            print(&ep.output, &v, |v| format!("imported {} certificate {}", s(&v["role"]), s(&v["hash"])));
        }
        CertsCommand::Unregister { hash } => {
            let v = client.post(&format!("/api/v1/certificates/{hash}/unregister"), &Value::Null).await?;
            print(&ep.output, &v, |v| format!("deletion request {} sent", v["request_id"]));
        }
        CertsCommand::Activate { hash } | CertsCommand::Disable { hash } => {
            let verb = if matches!(command, CertsCommand::Activate { .. }) { "activate" } else { "disable" };
            let v = client.post(&format!("/api/v1/certificates/{hash}/{verb}"), &Value::Null).await?;
            print(&ep.output, &v, |v| {
                format!("certificate {} {}", s(&v["hash"]), if v["active"] == true { "active" } else { "disabled" })
            });
        }
        CertsCommand::Register { hash, address } => {
            let v =
                client.post(&format!("/api/v1/certificates/{hash}/register"), &json!({ "address": address })).await?;
            print(&ep.output, &v, |v| {
                format!(
                    "registration request {} sent; it takes effect with the central server's approval",
                    v["request_id"]
                )
            });
        }
    }
    Ok(())
}

/// `musubi address`: tell the central server the server's new address.
pub async fn address(ep: &Endpoint, address: &str) -> Result<()> {
    let v = ep.client()?.call("PUT", "/api/v1/address", Some(&json!({ "address": address }))).await?;
    print(&ep.output, &v, |v| format!("address change request {} sent", v["request_id"]));
    Ok(())
}

/// `musubi clients …`.
pub async fn clients(ep: &Endpoint, command: &ClientsCommand) -> Result<()> {
    let client = ep.client()?;
    let path = |c: &str| format!("/api/v1/clients/{}", percent(c));
    match command {
        ClientsCommand::List => {
            let v = client.get("/api/v1/clients").await?;
            print(&ep.output, &v, |v| {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| format!("{}  {}", s(&c["id"]), s(&c["status"])))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ClientsCommand::Add { client: c } => {
            let v = client.post("/api/v1/clients", &json!({ "client": c })).await?;
            print(&ep.output, &v, |v| format!("added {}", s(&v["id"])));
        }
        ClientsCommand::Register { client: c } => {
            let v = client.post(&format!("{}/register", path(c)), &Value::Null).await?;
            print(&ep.output, &v, |v| format!("registration request {} sent", v["request_id"]));
        }
        ClientsCommand::Delete { client: c } => {
            let v = client.delete(&path(c)).await?;
            print(&ep.output, &v, |v| match v["request_id"].as_i64() {
                Some(id) => format!("removed; deletion request {id} sent"),
                None => "removed".into(),
            });
        }
    }
    Ok(())
}

/// `musubi requests …` (central server).
pub async fn requests(ep: &Endpoint, command: &RequestsCommand) -> Result<()> {
    let client = ep.client()?;
    match command {
        RequestsCommand::List { pending } => {
            let v = client.get(if *pending { "/api/v1/requests?status=pending" } else { "/api/v1/requests" }).await?;
            print(&ep.output, &v, |v| {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        format!(
                            "{}  {}  {}  {}  {}",
                            r["id"],
                            s(&r["status"]),
                            s(&r["kind"]),
                            s(&r["server"]),
                            s(&r["detail"])
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        RequestsCommand::Approve { id } => {
            let v = client.post(&format!("/api/v1/requests/{id}/approve"), &Value::Null).await?;
            print(&ep.output, &v, |_| format!("request {id} approved"));
        }
        RequestsCommand::Reject { id, reason } => {
            let v = client.post(&format!("/api/v1/requests/{id}/reject"), &json!({ "reason": reason })).await?;
            print(&ep.output, &v, |_| format!("request {id} rejected"));
        }
    }
    Ok(())
}

/// Percent-encodes an identifier for a URL path segment.
pub fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Service description commands.
#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Add a service description from a WSDL: its operations become the client's services.
    Add {
        /// The client (subsystem) providing the services.
        #[arg(long)]
        client: String,
        /// The WSDL: an http(s):// URL, or a file.
        #[arg(long)]
        wsdl: String,
        /// The provider URL when the WSDL names no soap:address.
        #[arg(long)]
        provider_url: Option<String>,
    },
    /// A client's service descriptions and services.
    List {
        /// The client.
        #[arg(long)]
        client: String,
    },
    /// Disable a service description; clients get the notice.
    Disable {
        /// The description's id (from `service list`).
        id: i64,
        /// What clients are told.
        #[arg(long)]
        notice: String,
    },
    /// Enable a service description again.
    Enable {
        /// The description's id.
        id: i64,
    },
    /// Delete a service description, its services and their access rights.
    Delete {
        /// The description's id.
        id: i64,
    },
    /// Read a description's WSDL again: new operations are added, gone ones removed.
    Refresh {
        /// The description's id.
        id: i64,
        /// The WSDL file, for a description that was added from a file.
        #[arg(long)]
        wsdl: Option<PathBuf>,
    },
    /// Change a service's provider URL, timeout or TLS verification.
    Edit {
        /// The service, e.g. SERVICE:DEMO/COM/2002/home/getHumidity/v1
        service: String,
        /// The provider URL.
        #[arg(long)]
        url: Option<String>,
        /// Seconds to wait for the provider.
        #[arg(long)]
        timeout: Option<u64>,
        /// Whether the provider's TLS certificate is checked (https URLs).
        #[arg(long)]
        ssl_verify: Option<bool>,
    },
}

/// Access-right commands.
#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// Let a subsystem, member, local group or global group call a service.
    Grant {
        /// The service, e.g. SERVICE:DEMO/COM/2002/home/getHumidity
        service: String,
        /// SUBSYSTEM:…, MEMBER:…, local:GROUP or global:GROUP
        #[arg(long)]
        to: String,
    },
    /// Take an access right away.
    Revoke {
        /// The service.
        service: String,
        /// Whose right.
        #[arg(long)]
        to: String,
    },
    /// Who may call a service; or, with --client, every right on a client's services.
    List {
        /// The service.
        #[arg(required_unless_present = "client", conflicts_with = "client")]
        service: Option<String>,
        /// The providing client (X-Road's service clients view).
        #[arg(long)]
        client: Option<String>,
        /// With --client: only this subject's rights.
        #[arg(long, requires = "client")]
        to: Option<String>,
    },
}

/// Local-group commands.
#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Add a local group to a client.
    Add {
        /// The client.
        #[arg(long)]
        client: String,
        /// The group's code.
        code: String,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// A client's local groups and their members.
    List {
        /// The client.
        #[arg(long)]
        client: String,
    },
    /// Delete a local group (the access rights granted to it go too).
    Delete {
        /// The client.
        #[arg(long)]
        client: String,
        /// The group's code.
        code: String,
    },
    /// Add a member or subsystem to a local group.
    AddMember {
        /// The client.
        #[arg(long)]
        client: String,
        /// The group's code.
        code: String,
        /// The member or subsystem.
        member: String,
    },
    /// Remove a member or subsystem from a local group.
    RemoveMember {
        /// The client.
        #[arg(long)]
        client: String,
        /// The group's code.
        code: String,
        /// The member or subsystem.
        member: String,
    },
}

/// `musubi service …`.
pub async fn service(ep: &Endpoint, command: &ServiceCommand) -> Result<()> {
    let api = ep.client()?;
    match command {
        ServiceCommand::Add { client, wsdl, provider_url } => {
            let body = if wsdl.starts_with("http://") || wsdl.starts_with("https://") {
                if wsdl.starts_with("https://") {
                    anyhow::bail!("download the https WSDL and give the file: the server reads WSDLs over http only");
                }
                json!({ "url": wsdl, "provider_url": provider_url })
            } else {
                let path = Path::new(wsdl);
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
                json!({ "url": format!("file://{}", abs.display()), "wsdl": text, "provider_url": provider_url })
            };
            let v = api.post(&format!("/api/v1/clients/{}/service-descriptions", percent(client)), &body).await?;
            print(&ep.output, &v, |v| {
                let services = v["services"].as_array().map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "));
                format!("service description {} added: {}", v["id"], services.unwrap_or_default())
            });
        }
        ServiceCommand::List { client } => {
            let v = api.get(&format!("/api/v1/clients/{}/service-descriptions", percent(client))).await?;
            print(&ep.output, &v, |v| {
                let mut out = Vec::new();
                for d in v.as_array().into_iter().flatten() {
                    let state = if d["enabled"].as_bool() == Some(true) {
                        "enabled".into()
                    } else {
                        format!("disabled: {}", s(&d["notice"]))
                    };
                    out.push(format!("{}  {}  {state}", d["id"], s(&d["url"])));
                    for svc in d["services"].as_array().into_iter().flatten() {
                        out.push(format!("    {}  {}", s(&svc["id"]), s(&svc["url"])));
                    }
                }
                out.join("\n")
            });
        }
        ServiceCommand::Disable { id, notice } => {
            let v =
                api.post(&format!("/api/v1/service-descriptions/{id}/disable"), &json!({ "notice": notice })).await?;
            print(&ep.output, &v, |_| format!("service description {id} disabled"));
        }
        ServiceCommand::Enable { id } => {
            let v = api.post(&format!("/api/v1/service-descriptions/{id}/enable"), &Value::Null).await?;
            print(&ep.output, &v, |_| format!("service description {id} enabled"));
        }
        ServiceCommand::Refresh { id, wsdl } => {
            let body = match wsdl {
                Some(f) => {
                    json!({ "wsdl": std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))? })
                }
                None => json!({}),
            };
            let v = api.post(&format!("/api/v1/service-descriptions/{id}/refresh"), &body).await?;
            print(&ep.output, &v, |v| format!("refreshed: added {}, removed {}", v["added"], v["removed"]));
        }
        ServiceCommand::Edit { service, url, timeout, ssl_verify } => {
            let body = json!({ "url": url, "timeout_secs": timeout, "ssl_verify": ssl_verify });
            let v = api.call("PATCH", &format!("/api/v1/services/{}", percent(service)), Some(&body)).await?;
            print(&ep.output, &v, |v| format!("{}  {}  timeout {} s", s(&v["id"]), s(&v["url"]), v["timeout_secs"]));
        }
        ServiceCommand::Delete { id } => {
            let v = api.delete(&format!("/api/v1/service-descriptions/{id}")).await?;
            print(&ep.output, &v, |_| format!("service description {id} deleted"));
        }
    }
    Ok(())
}

/// `musubi access …`.
pub async fn access(ep: &Endpoint, command: &AccessCommand) -> Result<()> {
    let api = ep.client()?;
    let path = |service: &str| format!("/api/v1/services/{}/access-rights", percent(service));
    match command {
        AccessCommand::Grant { service, to } => {
            let v = api.post(&path(service), &json!({ "subject": to })).await?;
            print(&ep.output, &v, |_| format!("{to} may call {service}"));
        }
        AccessCommand::Revoke { service, to } => {
            let v = api.delete(&format!("{}/{}", path(service), percent(to))).await?;
            print(&ep.output, &v, |_| format!("{to} may no longer call {service}"));
        }
        AccessCommand::List { service: Some(service), .. } => {
            let v = api.get(&path(service)).await?;
            print(&ep.output, &v, |v| {
                v.as_array().into_iter().flatten().map(|r| s(&r["subject"]).to_string()).collect::<Vec<_>>().join("\n")
            });
        }
        AccessCommand::List { service: None, client, to } => {
            let client = client.as_deref().context("name a service or --client")?;
            let mut p = format!("/api/v1/clients/{}/access-rights", percent(client));
            if let Some(to) = to {
                p.push_str(&format!("?subject={}", percent(to)));
            }
            let v = api.get(&p).await?;
            print(&ep.output, &v, |v| {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| format!("{}  {}", s(&r["service_code"]), s(&r["subject"])))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}

/// `musubi group …`.
pub async fn group(ep: &Endpoint, command: &GroupCommand) -> Result<()> {
    let api = ep.client()?;
    let base = |client: &str| format!("/api/v1/clients/{}/local-groups", percent(client));
    match command {
        GroupCommand::Add { client, code, description } => {
            let v = api.post(&base(client), &json!({ "code": code, "description": description })).await?;
            print(&ep.output, &v, |_| format!("local group {code} added to {client}"));
        }
        GroupCommand::List { client } => {
            let v = api.get(&base(client)).await?;
            print(&ep.output, &v, |v| {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| {
                        let members: Vec<&str> = g["members"].as_array().into_iter().flatten().map(s).collect();
                        format!("{}  {}  {}", s(&g["code"]), s(&g["description"]), members.join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        GroupCommand::Delete { client, code } => {
            let v = api.delete(&format!("{}/{}", base(client), percent(code))).await?;
            print(&ep.output, &v, |_| format!("local group {code} of {client} deleted"));
        }
        GroupCommand::AddMember { client, code, member } => {
            let v =
                api.post(&format!("{}/{}/members", base(client), percent(code)), &json!({ "member": member })).await?;
            print(&ep.output, &v, |_| format!("{member} added to {code}"));
        }
        GroupCommand::RemoveMember { client, code, member } => {
            let v = api.delete(&format!("{}/{}/members/{}", base(client), percent(code), percent(member))).await?;
            print(&ep.output, &v, |_| format!("{member} removed from {code}"));
        }
    }
    Ok(())
}

/// API-key commands (system administrators).
#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Make an API key with roles; the key is printed once.
    Create {
        /// Who or what uses it.
        #[arg(long)]
        name: String,
        /// A role: security_officer, registration_officer, service_administrator,
        /// system_administrator or observer; repeatable.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// The keys (ids, names, roles; never the keys themselves).
    List,
    /// Revoke a key.
    Revoke {
        /// Its id.
        id: u32,
    },
}

/// `musubi api-key …`.
pub async fn api_key(ep: &Endpoint, command: &ApiKeyCommand) -> Result<()> {
    let api = ep.client()?;
    match command {
        ApiKeyCommand::Create { name, roles } => {
            let v = api.post("/api/v1/api-keys", &json!({ "name": name, "roles": roles })).await?;
            print(&ep.output, &v, |v| {
                format!("API key {} for {name}: {}\n(shown once; keep it safe)", v["id"], s(&v["key"]))
            });
        }
        ApiKeyCommand::List => {
            let v = api.get("/api/v1/api-keys").await?;
            print(&ep.output, &v, |v| {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|k| {
                        let roles: Vec<&str> = k["roles"].as_array().into_iter().flatten().map(s).collect();
                        format!("{}  {}  {}", k["id"], s(&k["name"]), roles.join(","))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ApiKeyCommand::Revoke { id } => {
            let v = api.delete(&format!("/api/v1/api-keys/{id}")).await?;
            print(&ep.output, &v, |_| format!("API key {id} revoked"));
        }
    }
    Ok(())
}

/// Global-group commands (central server; registration officers).
#[derive(Subcommand, Debug)]
pub enum GlobalGroupCommand {
    /// Add a member or subsystem to a global group (made if new); security
    /// servers see it in the next global configuration.
    AddMember {
        /// The group's code.
        code: String,
        /// The member or subsystem, e.g. SUBSYSTEM:DEMO/GOV/1001/care
        member: String,
        /// What the group is for (for a new group).
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove a member or subsystem from a global group.
    RemoveMember {
        /// The group's code.
        code: String,
        /// The member or subsystem.
        member: String,
    },
}

/// `musubi global-group …`.
pub async fn global_group(ep: &Endpoint, command: &GlobalGroupCommand) -> Result<()> {
    let api = ep.client()?;
    match command {
        GlobalGroupCommand::AddMember { code, member, description } => {
            let body = json!({ "member": member, "description": description });
            let v = api.post(&format!("/api/v1/global-groups/{}/members", percent(code)), &body).await?;
            print(&ep.output, &v, |_| format!("{member} added to global group {code}"));
        }
        GlobalGroupCommand::RemoveMember { code, member } => {
            let v = api.delete(&format!("/api/v1/global-groups/{}/members/{}", percent(code), percent(member))).await?;
            print(&ep.output, &v, |_| format!("{member} removed from global group {code}"));
        }
    }
    Ok(())
}

/// `musubi log export` through the admin API.
pub async fn export_log(
    ep: &Endpoint,
    query_id: &str,
    client: Option<&musubi_protocol::ClientId>,
    out: &Path,
) -> Result<()> {
    let mut path = format!("/api/v1/message-log/{}", percent(query_id));
    if let Some(c) = client {
        path.push_str(&format!("?client={}", percent(&c.to_string())));
    }
    let zip = ep.client()?.download(&path, 512 * 1024 * 1024).await?;
    unpack_containers(&zip, out)
}

/// Writes the containers of an export ZIP into `out`, printing each path.
pub fn unpack_containers(zip: &[u8], out: &Path) -> Result<()> {
    let files = musubi_protocol::asic::read_zip(zip, &musubi_protocol::asic::Limits::default())?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, bytes) in files {
        anyhow::ensure!(
            !name.contains(['/', '\\']) && !name.starts_with('.'),
            "the export holds a file named {name:?}, which is not a container name; refused"
        );
        let path = out.join(&name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// Adapter commands.
#[derive(Subcommand, Debug)]
pub enum AdapterCommand {
    /// Publish the ECHONET Lite adapter's services on the provider's security
    /// server in one step: its generated WSDL added to the client (or
    /// refreshed, when it is there already), and access granted.
    Publish {
        /// The provider's subsystem that offers the services, e.g. SUBSYSTEM:DEMO/COM/2002/home
        #[arg(long)]
        client: String,
        /// The adapter's provider endpoint as the security server reaches it, e.g. http://10.0.0.5:8090/
        #[arg(long)]
        adapter: String,
        /// Grant every published service to a subsystem, member, local:GROUP or global:GROUP; repeatable.
        #[arg(long)]
        grant: Vec<String>,
    },
}

/// `musubi adapter …`.
pub async fn adapter(ep: &Endpoint, command: &AdapterCommand) -> Result<()> {
    let AdapterCommand::Publish { client, adapter, grant } = command;
    let v = publish_adapter(&ep.client()?, client, adapter, grant).await?;
    print(&ep.output, &v, |v| {
        let services: Vec<&str> = v["services"].as_array().into_iter().flatten().map(s).collect();
        let mut text = format!("{} service description {}: {}", s(&v["action"]), v["id"], services.join(", "));
        for g in v["granted"].as_array().into_iter().flatten() {
            text.push_str(&format!("\ngranted to {}", s(g)));
        }
        text
    });
    Ok(())
}

/// Publishes the adapter at `adapter` (its provider endpoint; the WSDL is
/// at `?wsdl`) for `client`: adds the WSDL as a service description, or
/// refreshes the one already added from there, then grants every service of
/// it to each of `grants`. Answers `{action, id, services, granted}`.
pub async fn publish_adapter(api: &AdminClient, client: &str, adapter: &str, grants: &[String]) -> Result<Value> {
    anyhow::ensure!(
        adapter.starts_with("http://"),
        "--adapter must be the adapter's http:// provider endpoint, e.g. http://10.0.0.5:8090/"
    );
    let base = if adapter.ends_with('/') { adapter.to_string() } else { format!("{adapter}/") };
    let wsdl_url = format!("{base}?wsdl");
    let descriptions = format!("/api/v1/clients/{}/service-descriptions", percent(client));
    let existing = api.get(&descriptions).await?;
    let found =
        existing.as_array().into_iter().flatten().find(|d| d["url"] == wsdl_url.as_str()).map(|d| d["id"].clone());
    let (action, id) = match found {
        Some(id) => {
            api.post(&format!("/api/v1/service-descriptions/{id}/refresh"), &json!({})).await?;
            ("refreshed", id)
        }
        None => {
            let added = api.post(&descriptions, &json!({ "url": wsdl_url, "provider_url": base })).await?;
            ("added", added["id"].clone())
        }
    };
    let listed = api.get(&descriptions).await?;
    let services: Vec<String> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["id"] == id)
        .flat_map(|d| d["services"].as_array().cloned().unwrap_or_default())
        .filter_map(|svc| svc["id"].as_str().map(str::to_owned))
        .collect();
    anyhow::ensure!(!services.is_empty(), "the adapter's WSDL at {wsdl_url} offers no services");
    for subject in grants {
        for service in &services {
            api.post(&format!("/api/v1/services/{}/access-rights", percent(service)), &json!({ "subject": subject }))
                .await
                .with_context(|| format!("granting {service} to {subject}"))?;
        }
    }
    Ok(json!({ "action": action, "id": id, "services": services, "granted": grants }))
}

/// `musubi devices …`: the ECHONET Lite adapter's devices (its admin API).
#[derive(clap::Subcommand, Debug)]
pub enum DevicesCommand {
    /// List every device.
    List,
    /// Publish a device.
    Approve {
        /// Device id.
        id: String,
    },
    /// Stop publishing a device.
    Revoke {
        /// Device id.
        id: String,
    },
    /// Publish every device of a class known now.
    ApproveClass {
        /// Class name (homeAirConditioner) or code (0x0130).
        class: String,
    },
    /// Stop publishing every device of a class.
    RevokeClass {
        /// Class name or code.
        class: String,
    },
    /// Register a send-only device by hand.
    Add {
        /// Its address.
        #[arg(long)]
        address: String,
        /// Its EOJ (6 hex digits).
        #[arg(long)]
        eoj: String,
    },
    /// Remove a device.
    Remove {
        /// Device id.
        id: String,
    },
    /// Run a discovery round now.
    Discover,
}

/// `musubi devices …` against the adapter's admin API; the operator named
/// in the consent trail is the API key's name (or the UI user).
pub async fn devices(ep: &Endpoint, command: &DevicesCommand) -> Result<()> {
    let client = ep.client()?;
    let enc = |s: &str| percent(s);
    let v = match command {
        DevicesCommand::List => client.get("/api/v1/devices").await?,
        DevicesCommand::Approve { id } => {
            client.post(&format!("/api/v1/devices/{}/approve", enc(id)), &Value::Null).await?
        }
        DevicesCommand::Revoke { id } => {
            client.post(&format!("/api/v1/devices/{}/revoke", enc(id)), &Value::Null).await?
        }
        DevicesCommand::ApproveClass { class } => {
            client.post(&format!("/api/v1/classes/{}/approve", enc(class)), &Value::Null).await?
        }
        DevicesCommand::RevokeClass { class } => {
            client.post(&format!("/api/v1/classes/{}/revoke", enc(class)), &Value::Null).await?
        }
        DevicesCommand::Add { address, eoj } => {
            client.post("/api/v1/devices", &json!({ "address": address, "eoj": eoj })).await?
        }
        DevicesCommand::Remove { id } => client.delete(&format!("/api/v1/devices/{}", enc(id))).await?,
        DevicesCommand::Discover => client.post("/api/v1/discover", &Value::Null).await?,
    };
    print(&ep.output, &v, |v| {
        let line = |d: &Value| {
            format!(
                "{}  {}  {}  {}  {}",
                s(&d["id"]),
                s(&d["deviceType"]),
                s(&d["address"]),
                if d["approved"] == true { "published" } else { "not published" },
                if d["alive"] == true { "alive" } else { "silent" }
            )
        };
        match v {
            Value::Array(list) => list.iter().map(line).collect::<Vec<_>>().join("\n"),
            v if v.get("deviceType").is_some() => line(v),
            v => v.to_string(),
        }
    });
    Ok(())
}

/// The central server's governance: member classes, members and their
/// subsystems, trusted CAs and TSAs, the global configuration and its anchor.
#[derive(Subcommand, Debug)]
pub enum CentralCommand {
    /// Add a member class, e.g. GOV.
    AddMemberClass {
        /// The class's code.
        code: String,
        /// What the class is.
        #[arg(long)]
        description: String,
    },
    /// Add a member, e.g. MEMBER:JP/GOV/1001.
    AddMember {
        /// The member's identifier.
        id: String,
        /// The organisation's name.
        #[arg(long)]
        name: String,
    },
    /// Add a subsystem to a member.
    AddSubsystem {
        /// The member, e.g. MEMBER:JP/GOV/1001.
        member: String,
        /// The subsystem's code.
        code: String,
    },
    /// Trust a certification authority (its certificate, PEM) with its OCSP responder.
    AddCa {
        /// A name for it.
        #[arg(long)]
        name: String,
        /// Its certificate (PEM file).
        #[arg(long)]
        cert: PathBuf,
        /// Its OCSP responder, http://HOST:PORT/.
        #[arg(long)]
        ocsp_url: Option<String>,
    },
    /// Trust a time-stamping authority (RFC 3161 over HTTP).
    AddTsa {
        /// A name for it.
        #[arg(long)]
        name: String,
        /// Where security servers send time-stamp requests, http://HOST:PORT/.
        #[arg(long)]
        url: String,
        /// Its certificate (PEM file).
        #[arg(long)]
        cert: PathBuf,
    },
    /// Generate and sign the global configuration now (it is also generated on a timer).
    Generate,
    /// Save the configuration anchor security servers are initialised with.
    Anchor {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

fn pem_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(text.len() <= 64 * 1024, "{} is larger than a certificate (64 KiB)", path.display());
    Ok(text)
}

/// `musubi central …`.
pub async fn central(ep: &Endpoint, command: &CentralCommand) -> Result<()> {
    let api = ep.client()?;
    match command {
        CentralCommand::AddMemberClass { code, description } => {
            let v = api.post("/api/v1/member-classes", &json!({ "code": code, "description": description })).await?;
            print(&ep.output, &v, |_| format!("member class {code} added"));
        }
        CentralCommand::AddMember { id, name } => {
            let v = api.post("/api/v1/members", &json!({ "id": id, "name": name })).await?;
            print(&ep.output, &v, |_| format!("{id} added"));
        }
        CentralCommand::AddSubsystem { member, code } => {
            let v =
                api.post(&format!("/api/v1/members/{}/subsystems", percent(member)), &json!({ "code": code })).await?;
            print(&ep.output, &v, |v| format!("{} added", s(&v["id"])));
        }
        CentralCommand::AddCa { name, cert, ocsp_url } => {
            let body = json!({ "name": name, "certificate": pem_file(cert)?, "ocsp_url": ocsp_url });
            let v = api.post("/api/v1/certification-authorities", &body).await?;
            print(&ep.output, &v, |_| format!("CA {name} trusted"));
        }
        CentralCommand::AddTsa { name, url, cert } => {
            let body = json!({ "name": name, "url": url, "certificate": pem_file(cert)? });
            let v = api.post("/api/v1/timestamping-authorities", &body).await?;
            print(&ep.output, &v, |_| format!("TSA {name} trusted"));
        }
        CentralCommand::Generate => {
            let v = api.post("/api/v1/global-configuration/generate", &Value::Null).await?;
            print(&ep.output, &v, |_| "global configuration generated".to_string());
        }
        CentralCommand::Anchor { out } => {
            let xml = api.download("/api/v1/anchor", 1024 * 1024).await?;
            std::fs::write(out, &xml).with_context(|| format!("cannot write {}", out.display()))?;
            print(&ep.output, &json!({ "anchor": out }), |_| format!("anchor saved to {}", out.display()));
        }
    }
    Ok(())
}

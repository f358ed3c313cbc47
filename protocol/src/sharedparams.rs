//! The trust part of X-Road's shared parameters (`shared-params.xml` of a
//! global configuration directory): approved CAs (top and intermediate, with
//! their OCSP responders), approved TSAs and `ocspFreshnessSeconds`. This is
//! what offline verification of signatures and containers needs.
//!
//! `<cert>` holds base64 of DER, or (as in some X-Road test directories)
//! base64 of PEM text; both are read. CAs marked `authenticationOnly` are
//! left out: they do not vouch for signing certificates.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use xml_sec::Node;

use crate::ClientId;

/// Largest `shared-params.xml` read, bytes.
pub const MAX_SHARED_PARAMS_BYTES: usize = 16 * 1024 * 1024;

/// Why a shared-parameters file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shared parameters: {0}")]
pub struct SharedParamsError(pub String);

fn bad(msg: impl Into<String>) -> SharedParamsError {
    SharedParamsError(msg.into())
}

/// Certificates (DER) and settings for verification, from one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// `instanceIdentifier`.
    pub instance: String,
    /// Top and intermediate CA certificates of CAs that may issue signing certificates.
    pub cas: Vec<Vec<u8>>,
    /// OCSP responder certificates of those CAs.
    pub ocsp_responders: Vec<Vec<u8>>,
    /// Approved TSA certificates.
    pub tsas: Vec<Vec<u8>>,
    /// (top CA certificate, `certificateProfileInfo`) of each CA that names one.
    pub profiles: Vec<(Vec<u8>, String)>,
    /// `globalSettings/ocspFreshnessSeconds`, when given.
    pub ocsp_freshness_seconds: Option<u64>,
}

/// Parses `shared-params.xml` (bounded, no DOCTYPE, root `<conf>`) and
/// hands `f` its root.
fn with_conf<T>(
    bytes: &[u8],
    f: impl FnOnce(Node<'_, '_>) -> Result<T, SharedParamsError>,
) -> Result<T, SharedParamsError> {
    crate::globalconf::parse_xml(bytes, |root| {
        if root.tag_name().name() != "conf" {
            return Err(format!("the root element is <{}>, not <conf>", root.tag_name().name()));
        }
        f(root).map_err(|e| e.0)
    })
    .map_err(SharedParamsError)
}

/// Reads the trust of one `shared-params.xml`.
pub fn read_trust(bytes: &[u8]) -> Result<Trust, SharedParamsError> {
    with_conf(bytes, trust_of)
}

fn trust_of(root: Node<'_, '_>) -> Result<Trust, SharedParamsError> {
    {
        let instance = children(root, "instanceIdentifier").next().map(text_of).unwrap_or_default();
        let mut trust = Trust { instance: instance.trim().into(), ..Trust::default() };
        for ca in children(root, "approvedCA") {
            let name = children(ca, "name").next().map(text_of).unwrap_or_default();
            if children(ca, "authenticationOnly").next().map(text_of).is_some_and(|t| t.trim() == "true") {
                continue;
            }
            if let (Some(top), Some(info)) =
                (children(ca, "topCA").next(), children(ca, "certificateProfileInfo").next())
            {
                trust.profiles.push((cert(top, &format!("CA {name:?}"))?, text_of(info).trim().to_owned()));
            }
            for level in children(ca, "topCA").chain(children(ca, "intermediateCA")) {
                trust.cas.push(cert(level, &format!("CA {name:?}"))?);
                for ocsp in children(level, "ocsp") {
                    if children(ocsp, "cert").next().is_some() {
                        trust.ocsp_responders.push(cert(ocsp, &format!("an OCSP responder of CA {name:?}"))?);
                    }
                }
            }
        }
        for tsa in children(root, "approvedTSA") {
            let name = children(tsa, "name").next().map(text_of).unwrap_or_default();
            trust.tsas.push(cert(tsa, &format!("TSA {name:?}"))?);
        }
        if let Some(s) =
            children(root, "globalSettings").next().and_then(|g| children(g, "ocspFreshnessSeconds").next())
        {
            let t = text_of(s);
            trust.ocsp_freshness_seconds =
                Some(t.trim().parse().map_err(|_| bad(format!("ocspFreshnessSeconds {t:?} is not a number")))?);
        }
        Ok(trust)
    }
}

/// A member with its subsystems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEntry {
    /// `MEMBER:…`.
    pub id: ClientId,
    /// Display name.
    pub name: String,
    /// Subsystem codes.
    pub subsystems: Vec<String>,
}

/// A security server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// Its owner.
    pub owner: ClientId,
    /// Server code.
    pub server_code: String,
    /// Address, when it has one.
    pub address: Option<String>,
    /// Authentication-certificate hashes (as written: base64).
    pub auth_cert_hashes: Vec<String>,
    /// Clients it hosts.
    pub clients: Vec<ClientId>,
    /// `inMaintenanceMode` (version 5 on): the server is in maintenance mode,
    /// with the operator's message.
    pub maintenance: Option<String>,
}

/// A global group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group code.
    pub code: String,
    /// Description.
    pub description: String,
    /// Members (members or subsystems).
    pub members: Vec<ClientId>,
}

/// A CA's ACME server (version 4 on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acme {
    /// `directoryURL`.
    pub directory_url: String,
    /// Profile id for authentication certificates.
    pub auth_profile_id: Option<String>,
    /// Profile id for signing certificates.
    pub sign_profile_id: Option<String>,
}

/// The membership side of shared parameters: who is in the network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// `instanceIdentifier`.
    pub instance: String,
    /// Members.
    pub members: Vec<MemberEntry>,
    /// Security servers.
    pub servers: Vec<ServerEntry>,
    /// Global groups.
    pub groups: Vec<GroupEntry>,
    /// Member classes (code, description).
    pub member_classes: Vec<(String, String)>,
    /// ACME servers by CA name.
    pub acme: Vec<(String, Acme)>,
}

impl Directory {
    /// Whether `client` is in global group `code` (a member's subsystems are not).
    pub fn in_group(&self, code: &str, client: &ClientId) -> bool {
        self.groups.iter().any(|g| g.code == code && g.members.contains(client))
    }
}

/// Reads the membership side of one `shared-params.xml`: members,
/// subsystems, security servers (owners and clients resolved from their
/// XML ids), global groups, member classes and CAs' ACME servers.
pub fn read_directory(bytes: &[u8]) -> Result<Directory, SharedParamsError> {
    with_conf(bytes, directory_of)
}

fn directory_of(root: Node<'_, '_>) -> Result<Directory, SharedParamsError> {
    {
        let field =
            |n: Node<'_, '_>, name: &'static str| children(n, name).next().map(|c| text_of(c).trim().to_string());
        let instance = field(root, "instanceIdentifier").unwrap_or_default();
        let mut d = Directory { instance: instance.clone(), ..Directory::default() };
        // XML id → client identifier, for owners and hosted clients.
        let mut ids: Vec<(String, ClientId)> = Vec::new();
        for m in children(root, "member") {
            let class = children(m, "memberClass").next().and_then(|c| field(c, "code")).unwrap_or_default();
            let code = field(m, "memberCode").unwrap_or_default();
            let id =
                ClientId::member(&instance, &class, &code).map_err(|e| bad(format!("member {class}/{code}: {e}")))?;
            if let Some(xml_id) = m.attribute("id") {
                ids.push((xml_id.to_string(), id.clone()));
            }
            let mut subsystems = Vec::new();
            for s in children(m, "subsystem") {
                let sub = field(s, "subsystemCode").unwrap_or_default();
                let sid = ClientId::subsystem(&instance, &class, &code, &sub)
                    .map_err(|e| bad(format!("subsystem {class}/{code}/{sub}: {e}")))?;
                if let Some(xml_id) = s.attribute("id") {
                    ids.push((xml_id.to_string(), sid));
                }
                subsystems.push(sub);
            }
            d.members.push(MemberEntry { id, name: field(m, "name").unwrap_or_default(), subsystems });
        }
        let resolve = |xml_id: &str| ids.iter().find(|(k, _)| k == xml_id).map(|(_, v)| v.clone());
        for s in children(root, "securityServer") {
            let owner_ref = field(s, "owner").unwrap_or_default();
            let owner = resolve(&owner_ref)
                .ok_or_else(|| bad(format!("security server owner {owner_ref:?} is not a member")))?;
            let clients = children(s, "client")
                .map(|c| {
                    let r = text_of(c).trim().to_string();
                    resolve(&r).ok_or_else(|| bad(format!("security server client {r:?} is not a member or subsystem")))
                })
                .collect::<Result<_, _>>()?;
            d.servers.push(ServerEntry {
                owner,
                server_code: field(s, "serverCode").unwrap_or_default(),
                address: field(s, "address").filter(|a| !a.is_empty()),
                auth_cert_hashes: children(s, "authCertHash").map(|h| text_of(h).trim().to_string()).collect(),
                clients,
                maintenance: children(s, "inMaintenanceMode").next().map(|m| field(m, "message").unwrap_or_default()),
            });
        }
        for g in children(root, "globalGroup") {
            let mut members = Vec::new();
            for m in children(g, "groupMember") {
                let f = |name| field(m, name).unwrap_or_default();
                let (inst, class, code) = (f("xRoadInstance"), f("memberClass"), f("memberCode"));
                let id = match field(m, "subsystemCode") {
                    Some(sub) => ClientId::subsystem(&inst, &class, &code, &sub),
                    None => ClientId::member(&inst, &class, &code),
                }
                .map_err(|e| bad(format!("global group member: {e}")))?;
                members.push(id);
            }
            d.groups.push(GroupEntry {
                code: field(g, "groupCode").unwrap_or_default(),
                description: field(g, "description").unwrap_or_default(),
                members,
            });
        }
        if let Some(settings) = children(root, "globalSettings").next() {
            for c in children(settings, "memberClass") {
                d.member_classes
                    .push((field(c, "code").unwrap_or_default(), field(c, "description").unwrap_or_default()));
            }
        }
        for ca in children(root, "approvedCA") {
            if let Some(a) = children(ca, "acmeServer").next() {
                d.acme.push((
                    field(ca, "name").unwrap_or_default(),
                    Acme {
                        directory_url: field(a, "directoryURL").unwrap_or_default(),
                        auth_profile_id: field(a, "authenticationCertificateProfileId"),
                        sign_profile_id: field(a, "signingCertificateProfileId"),
                    },
                ));
            }
        }
        Ok(d)
    }
}

/// A CA certificate (top or intermediate) with its OCSP responders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCert {
    /// The certificate (DER).
    pub cert: Vec<u8>,
    /// OCSP responders, in the order listed.
    pub ocsp: Vec<OcspEntry>,
}

/// An OCSP responder of a CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspEntry {
    /// Its URL.
    pub url: String,
    /// The responder's certificate, where it is not the CA itself.
    pub cert: Option<Vec<u8>>,
    /// `costType` (version 6 on).
    pub cost: Option<OcspCost>,
}

/// Whether asking an OCSP responder costs money (shared parameters version 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspCost {
    /// `FREE`.
    Free,
    /// `PAID`.
    Paid,
    /// `UNDEFINED`.
    Undefined,
}

impl OcspCost {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "FREE" => Some(Self::Free),
            "PAID" => Some(Self::Paid),
            "UNDEFINED" => Some(Self::Undefined),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Self::Free => "FREE",
            Self::Paid => "PAID",
            Self::Undefined => "UNDEFINED",
        }
    }
}

/// An approved certification authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaEntry {
    /// Name.
    pub name: String,
    /// Issues only authentication certificates.
    pub authentication_only: bool,
    /// The top CA.
    pub top: CaCert,
    /// Intermediate CAs.
    pub intermediates: Vec<CaCert>,
    /// `certificateProfileInfo`.
    pub profile_info: Option<String>,
    /// Its ACME server.
    pub acme: Option<Acme>,
}

/// An approved time-stamping authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsaEntry {
    /// Name.
    pub name: String,
    /// URL.
    pub url: String,
    /// Certificate (DER).
    pub cert: Vec<u8>,
}

/// A whole `shared-params.xml` (version 5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedParams {
    /// Configuration sources and the verification certificates they announce.
    pub sources: Vec<crate::globalconf::Source>,
    /// Approved CAs.
    pub cas: Vec<CaEntry>,
    /// Approved TSAs.
    pub tsas: Vec<TsaEntry>,
    /// Members, servers, groups, member classes (its `acme` is not written; see [`CaEntry::acme`]).
    pub directory: Directory,
    /// `ocspFreshnessSeconds`.
    pub ocsp_freshness_seconds: Option<u64>,
}

/// What Musubi takes from `private-params.xml`: the instance and
/// `timeStampingIntervalSeconds` (how often the message log is stamped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivateParams {
    /// `instanceIdentifier`.
    pub instance: String,
    /// `timeStampingIntervalSeconds`, when given.
    pub time_stamping_interval_seconds: Option<u64>,
    /// `managementService`: where security servers send management requests
    /// (`authCertRegServiceAddress`) and the TLS certificate it must present
    /// (`authCertRegServiceCert`, DER).
    pub management: Option<(String, Vec<u8>)>,
}

/// Reads `private-params.xml` (bounded, no DOCTYPE, root `<conf>`).
pub fn read_private(bytes: &[u8]) -> Result<PrivateParams, SharedParamsError> {
    with_conf(bytes, |root| {
        let field = |name: &'static str| children(root, name).next().map(|c| text_of(c).trim().to_string());
        let interval = field("timeStampingIntervalSeconds")
            .map(|t| t.parse::<u64>().map_err(|_| bad(format!("timeStampingIntervalSeconds {t:?} is not a number"))))
            .transpose()?;
        let management = match children(root, "managementService").next() {
            Some(m) => {
                let address = children(m, "authCertRegServiceAddress").next().map(|a| text_of(a).trim().to_string());
                let address = address.ok_or_else(|| bad("managementService has no authCertRegServiceAddress"))?;
                let cert = children(m, "authCertRegServiceCert")
                    .next()
                    .and_then(|c| decode_cert(&text_of(c)))
                    .ok_or_else(|| bad("managementService has no authCertRegServiceCert certificate"))?;
                Some((address, cert))
            }
            None => None,
        };
        Ok(PrivateParams {
            instance: field("instanceIdentifier").unwrap_or_default(),
            time_stamping_interval_seconds: interval,
            management,
        })
    })
}

fn read_ca_cert(n: Node<'_, '_>, what: &str) -> Result<CaCert, SharedParamsError> {
    let mut ocsp = Vec::new();
    for o in children(n, "ocsp") {
        let url = children(o, "url").next().map(|u| text_of(u).trim().to_string()).unwrap_or_default();
        let c = match children(o, "cert").next() {
            Some(_) => Some(cert(o, &format!("an OCSP responder of {what}"))?),
            None => None,
        };
        let cost = match children(o, "costType").next().map(|c| text_of(c).trim().to_string()) {
            Some(t) => Some(OcspCost::parse(&t).ok_or_else(|| {
                bad(format!("the costType {t:?} of an OCSP responder of {what} is not FREE, PAID or UNDEFINED"))
            })?),
            None => None,
        };
        ocsp.push(OcspEntry { url, cert: c, cost });
    }
    Ok(CaCert { cert: cert(n, what)?, ocsp })
}

/// Reads a whole `shared-params.xml`, in one parse.
pub fn read(bytes: &[u8]) -> Result<SharedParams, SharedParamsError> {
    with_conf(bytes, |root| {
        let directory = directory_of(root)?;
        let sources = crate::globalconf::sources_of(root).map_err(SharedParamsError)?;

        let field =
            |n: Node<'_, '_>, name: &'static str| children(n, name).next().map(|c| text_of(c).trim().to_string());
        let mut cas = Vec::new();
        for ca in children(root, "approvedCA") {
            let name = field(ca, "name").unwrap_or_default();
            let what = format!("CA {name:?}");
            // A CA is known by its name (its ACME server, for one, is found by it).
            if cas.iter().any(|c: &CaEntry| c.name == name) {
                return Err(bad(format!("two approved CAs are named {name:?}; each needs a name of its own")));
            }
            let top = children(ca, "topCA").next().ok_or_else(|| bad(format!("{what} has no topCA")))?;
            cas.push(CaEntry {
                authentication_only: field(ca, "authenticationOnly").is_some_and(|t| t == "true"),
                top: read_ca_cert(top, &what)?,
                intermediates: children(ca, "intermediateCA")
                    .map(|i| read_ca_cert(i, &what))
                    .collect::<Result<_, _>>()?,
                profile_info: field(ca, "certificateProfileInfo"),
                acme: directory.acme.iter().find(|(n, _)| *n == name).map(|(_, a)| a.clone()),
                name,
            });
        }
        let mut tsas = Vec::new();
        for t in children(root, "approvedTSA") {
            let name = field(t, "name").unwrap_or_default();
            tsas.push(TsaEntry {
                url: field(t, "url").unwrap_or_default(),
                cert: cert(t, &format!("TSA {name:?}"))?,
                name,
            });
        }
        let freshness = children(root, "globalSettings")
            .next()
            .and_then(|g| field(g, "ocspFreshnessSeconds"))
            .map(|f| f.parse::<u64>().map_err(|_| bad(format!("ocspFreshnessSeconds {f:?} is not a number"))))
            .transpose()?;
        Ok(SharedParams { sources, cas, tsas, directory, ocsp_freshness_seconds: freshness })
    })
}

fn write_ca_cert(s: &mut String, tag: &str, c: &CaCert) {
    s.push_str(&format!("        <{tag}>\n            <cert>{}</cert>\n", B64.encode(&c.cert)));
    for o in &c.ocsp {
        s.push_str(&format!("            <ocsp>\n                <url>{}</url>\n", esc(&o.url)));
        if let Some(cert) = &o.cert {
            s.push_str(&format!("                <cert>{}</cert>\n", B64.encode(cert)));
        }
        if let Some(cost) = o.cost {
            s.push_str(&format!("                <costType>{}</costType>\n", cost.as_str()));
        }
        s.push_str("            </ocsp>\n");
    }
    s.push_str(&format!("        </{tag}>\n"));
}

fn write_id(s: &mut String, tag: &str, id: &ClientId) {
    s.push_str(&format!("        <{tag} id:objectType=\"{}\">\n", id.object_type()));
    s.push_str(&format!("            <id:xRoadInstance>{}</id:xRoadInstance>\n", esc(id.instance())));
    s.push_str(&format!("            <id:memberClass>{}</id:memberClass>\n", esc(id.member_class())));
    s.push_str(&format!("            <id:memberCode>{}</id:memberCode>\n", esc(id.member_code())));
    if let Some(sub) = id.subsystem_code() {
        s.push_str(&format!("            <id:subsystemCode>{}</id:subsystemCode>\n", esc(sub)));
    }
    s.push_str(&format!("        </{tag}>\n"));
}

/// Writes `shared-params.xml` in X-Road's version-5 schema. Servers' owners
/// and clients must be members or subsystems listed in `p.directory`.
pub fn write(p: &SharedParams) -> Result<String, SharedParamsError> {
    let d = &p.directory;
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tns:conf xmlns:id=\"http://x-road.eu/xsd/identifiers\" xmlns:tns=\"http://x-road.eu/xsd/xroad.xsd\">\n",
    );
    s.push_str(&format!("    <instanceIdentifier>{}</instanceIdentifier>\n", esc(&d.instance)));
    for src in &p.sources {
        s.push_str(&format!("    <source>\n        <address>{}</address>\n", esc(&src.location)));
        for c in &src.certs {
            s.push_str(&format!("        <internalVerificationCert>{}</internalVerificationCert>\n", B64.encode(c)));
        }
        for c in &src.external_certs {
            s.push_str(&format!("        <externalVerificationCert>{}</externalVerificationCert>\n", B64.encode(c)));
        }
        s.push_str("    </source>\n");
    }
    for ca in &p.cas {
        s.push_str(&format!("    <approvedCA>\n        <name>{}</name>\n", esc(&ca.name)));
        if ca.authentication_only {
            s.push_str("        <authenticationOnly>true</authenticationOnly>\n");
        }
        write_ca_cert(&mut s, "topCA", &ca.top);
        for i in &ca.intermediates {
            write_ca_cert(&mut s, "intermediateCA", i);
        }
        if let Some(info) = &ca.profile_info {
            s.push_str(&format!("        <certificateProfileInfo>{}</certificateProfileInfo>\n", esc(info)));
        }
        if let Some(a) = &ca.acme {
            s.push_str(&format!(
                "        <acmeServer>\n            <directoryURL>{}</directoryURL>\n",
                esc(&a.directory_url)
            ));
            if let Some(id) = &a.auth_profile_id {
                s.push_str(&format!(
                    "            <authenticationCertificateProfileId>{}</authenticationCertificateProfileId>\n",
                    esc(id)
                ));
            }
            if let Some(id) = &a.sign_profile_id {
                s.push_str(&format!(
                    "            <signingCertificateProfileId>{}</signingCertificateProfileId>\n",
                    esc(id)
                ));
            }
            s.push_str("        </acmeServer>\n");
        }
        s.push_str("    </approvedCA>\n");
    }
    for t in &p.tsas {
        s.push_str(&format!(
            "    <approvedTSA>\n        <name>{}</name>\n        <url>{}</url>\n        <cert>{}</cert>\n    </approvedTSA>\n",
            esc(&t.name),
            esc(&t.url),
            B64.encode(&t.cert)
        ));
    }
    let class_desc =
        |class: &str| d.member_classes.iter().find(|(c, _)| c == class).map_or("", |(_, desc)| desc.as_str());
    let mut xml_ids: Vec<(ClientId, String)> = Vec::new();
    for (i, m) in d.members.iter().enumerate() {
        let id = format!("m{i}");
        s.push_str(&format!(
            "    <member id=\"{id}\">\n        <memberClass>\n            <code>{}</code>\n            <description>{}</description>\n        </memberClass>\n        <memberCode>{}</memberCode>\n        <name>{}</name>\n",
            esc(m.id.member_class()),
            esc(class_desc(m.id.member_class())),
            esc(m.id.member_code()),
            esc(&m.name)
        ));
        xml_ids.push((m.id.clone(), id.clone()));
        for (j, sub) in m.subsystems.iter().enumerate() {
            let sid = format!("{id}s{j}");
            s.push_str(&format!("        <subsystem id=\"{sid}\">\n            <subsystemCode>{}</subsystemCode>\n        </subsystem>\n", esc(sub)));
            let cid = ClientId::subsystem(m.id.instance(), m.id.member_class(), m.id.member_code(), sub)
                .map_err(|e| bad(format!("subsystem {sub:?}: {e}")))?;
            xml_ids.push((cid, sid));
        }
        s.push_str("    </member>\n");
    }
    let xml_id = |c: &ClientId| {
        xml_ids
            .iter()
            .find(|(k, _)| k == c)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| bad(format!("{c} is not a listed member or subsystem")))
    };
    for srv in &d.servers {
        s.push_str(&format!(
            "    <securityServer>\n        <owner>{}</owner>\n        <serverCode>{}</serverCode>\n",
            xml_id(&srv.owner)?,
            esc(&srv.server_code)
        ));
        if let Some(a) = &srv.address {
            s.push_str(&format!("        <address>{}</address>\n", esc(a)));
        }
        for h in &srv.auth_cert_hashes {
            s.push_str(&format!("        <authCertHash>{}</authCertHash>\n", esc(h)));
        }
        for c in &srv.clients {
            s.push_str(&format!("        <client>{}</client>\n", xml_id(c)?));
        }
        if let Some(m) = &srv.maintenance {
            s.push_str(&format!(
                "        <inMaintenanceMode>\n            <message>{}</message>\n        </inMaintenanceMode>\n",
                esc(m)
            ));
        }
        s.push_str("    </securityServer>\n");
    }
    for g in &d.groups {
        s.push_str(&format!(
            "    <globalGroup>\n        <groupCode>{}</groupCode>\n        <description>{}</description>\n",
            esc(&g.code),
            esc(&g.description)
        ));
        for m in &g.members {
            write_id(&mut s, "groupMember", m);
        }
        s.push_str("    </globalGroup>\n");
    }
    s.push_str("    <globalSettings>\n");
    for (code, desc) in &d.member_classes {
        s.push_str(&format!("        <memberClass>\n            <code>{}</code>\n            <description>{}</description>\n        </memberClass>\n", esc(code), esc(desc)));
    }
    if let Some(f) = p.ocsp_freshness_seconds {
        s.push_str(&format!("        <ocspFreshnessSeconds>{f}</ocspFreshnessSeconds>\n"));
    }
    s.push_str("    </globalSettings>\n</tns:conf>\n");
    Ok(s)
}

fn esc(s: &str) -> String {
    crate::fault::escape_text(s)
}

fn children<'a, 'i>(n: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn text_of(n: Node<'_, '_>) -> String {
    n.children().filter_map(|c| c.text()).collect()
}

fn cert(n: Node<'_, '_>, what: &str) -> Result<Vec<u8>, SharedParamsError> {
    let c = children(n, "cert").next().ok_or_else(|| bad(format!("{what} has no <cert>")))?;
    decode_cert(&text_of(c)).ok_or_else(|| bad(format!("the <cert> of {what} is not base64 of a certificate")))
}

/// base64 of DER, or base64 of PEM text.
fn decode_cert(b64: &str) -> Option<Vec<u8>> {
    let clean: String = b64.split_whitespace().collect();
    let raw = B64.decode(clean.as_bytes()).ok()?;
    let text = std::str::from_utf8(&raw).ok().filter(|t| t.contains("-----BEGIN CERTIFICATE-----"));
    match text {
        Some(pem) => {
            let body: String = pem
                .lines()
                .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
                .skip(1)
                .take_while(|l| !l.starts_with("-----END"))
                .flat_map(str::split_whitespace)
                .collect();
            B64.decode(body.as_bytes()).ok()
        }
        None => (raw.first() == Some(&0x30)).then_some(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><ns3:conf xmlns:ns3=\"http://x-road.eu/xsd/xroad.xsd\">\
             <instanceIdentifier>DEV</instanceIdentifier>{body}</ns3:conf>"
        )
    }

    #[test]
    fn reads_cas_responders_tsas_and_freshness_in_both_cert_encodings() {
        let der = [0x30, 0x03, 0x02, 0x01, 0x01];
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", B64.encode(der));
        let xml = conf(&format!(
            "<approvedCA><name>a</name><topCA><cert>{d}</cert><ocsp><url>u</url><cert>{p}</cert></ocsp>\
             <ocsp><url>no-cert</url></ocsp></topCA><intermediateCA><cert>{d}</cert></intermediateCA></approvedCA>\
             <approvedCA><name>auth</name><authenticationOnly>true</authenticationOnly><topCA><cert>{d}</cert></topCA>\
             </approvedCA><approvedTSA><name>t</name><cert>{p}</cert></approvedTSA>\
             <globalSettings><ocspFreshnessSeconds> 42 </ocspFreshnessSeconds></globalSettings>",
            d = B64.encode(der),
            p = B64.encode(pem)
        ));
        let t = read_trust(xml.as_bytes()).unwrap();
        assert_eq!(t.instance, "DEV");
        assert_eq!(t.cas, [der.to_vec(), der.to_vec()], "top and intermediate; the authentication-only CA is left out");
        assert_eq!(t.ocsp_responders, [der.to_vec()]);
        assert_eq!(t.tsas, [der.to_vec()]);
        assert_eq!(t.ocsp_freshness_seconds, Some(42));
    }

    #[test]
    fn bad_input_is_named() {
        let too_big = vec![b' '; MAX_SHARED_PARAMS_BYTES + 1];
        assert!(read_trust(&too_big).unwrap_err().0.contains("exceeds"));
        assert!(read_trust(b"<other/>").unwrap_err().0.contains("not <conf>"));
        let no_cert = conf("<approvedTSA><name>t</name></approvedTSA>");
        assert!(read_trust(no_cert.as_bytes()).unwrap_err().0.contains("TSA \"t\" has no <cert>"));
        let not_cert = conf("<approvedTSA><name>t</name><cert>aGVsbG8=</cert></approvedTSA>");
        assert!(read_trust(not_cert.as_bytes()).unwrap_err().0.contains("not base64 of a certificate"));
        let freshness = conf("<globalSettings><ocspFreshnessSeconds>soon</ocspFreshnessSeconds></globalSettings>");
        assert!(read_trust(freshness.as_bytes()).unwrap_err().0.contains("is not a number"));
        assert!(read_trust(b"<!DOCTYPE x><conf/>").unwrap_err().0.contains("DOCTYPE"));
    }

    #[test]
    fn fuzz_sharedparams_6630a9c5_two_approved_cas_of_one_name_are_refused() {
        // Two CAs named alike, one with an ACME server: written again, both
        // had it, since a CA's ACME server is found by the CA's name.
        let der = B64.encode([0x30, 0x03, 0x02, 0x01, 0x01]);
        let ca = |name: &str, acme: &str| {
            format!("<approvedCA><name>{name}</name><topCA><cert>{der}</cert></topCA>{acme}</approvedCA>")
        };
        let acme = "<acmeServer><directoryURL>http://ca/acme</directoryURL></acmeServer>";
        let twice = conf(&format!("{}{}", ca("pki1", acme), ca("pki1", "")));
        assert!(read(twice.as_bytes()).unwrap_err().0.contains("two approved CAs are named \"pki1\""));
        let apart = conf(&format!("{}{}", ca("pki1", acme), ca("pki2", "")));
        let p = read(apart.as_bytes()).unwrap();
        assert_eq!(read(write(&p).unwrap().as_bytes()).unwrap(), p);
    }

    #[test]
    fn reads_the_time_stamping_interval_of_private_params() {
        let p = read_private(conf("<timeStampingIntervalSeconds>60</timeStampingIntervalSeconds>").as_bytes()).unwrap();
        assert_eq!(
            p,
            PrivateParams { instance: "DEV".into(), time_stamping_interval_seconds: Some(60), management: None }
        );
        assert_eq!(read_private(conf("").as_bytes()).unwrap().time_stamping_interval_seconds, None);
        let bad = conf("<timeStampingIntervalSeconds>often</timeStampingIntervalSeconds>");
        assert!(read_private(bad.as_bytes()).unwrap_err().0.contains("is not a number"));
    }
}

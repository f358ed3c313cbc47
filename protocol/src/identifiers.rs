//! X-Road identifiers (PR-MESS §2.2, `identifiers.xsd`): members, subsystems,
//! services, security servers, global and local groups.
//!
//! Every code is checked with X-Road's character rules when it is built, so an
//! identifier value that exists is always one X-Road would accept: not empty, at
//! most 255 characters, no control characters and none of `: ; / \ %` (X-Road
//! reserves them as separators in encoded identifiers and URLs).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest code X-Road stores (the database columns are 255 characters wide).
pub const MAX_CODE_LEN: usize = 255;

/// A code (instance, member class, member code, …) that breaks X-Road's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The field is empty or only whitespace.
    #[error("{field} is empty; give a non-empty code")]
    Empty {
        /// Which part of the identifier.
        field: &'static str,
    },
    /// The field is longer than [`MAX_CODE_LEN`].
    #[error("{field} is {len} characters long; at most {MAX_CODE_LEN} are allowed")]
    TooLong {
        /// Which part of the identifier.
        field: &'static str,
        /// Its length in characters.
        len: usize,
    },
    /// The field holds a character X-Road forbids.
    #[error(
        "{field} {value:?} contains {ch:?}; codes must not contain ':', ';', '/', '\\', '%', whitespace at the ends or control characters"
    )]
    BadChar {
        /// Which part of the identifier.
        field: &'static str,
        /// The offending value.
        value: String,
        /// The first forbidden character.
        ch: char,
    },
    /// A textual identifier could not be split into its parts.
    #[error("{value:?} is not a {kind} identifier; expected {expected}")]
    Malformed {
        /// What was being parsed.
        kind: &'static str,
        /// The input.
        value: String,
        /// The expected shape.
        expected: &'static str,
    },
}

/// Checks one code against X-Road's character rules.
pub fn validate_code(field: &'static str, value: &str) -> Result<(), IdError> {
    if value.trim().is_empty() {
        return Err(IdError::Empty { field });
    }
    let len = value.chars().count();
    if len > MAX_CODE_LEN {
        return Err(IdError::TooLong { field, len });
    }
    let bad = |ch: char| matches!(ch, ':' | ';' | '/' | '\\' | '%') || ch.is_control();
    if let Some(ch) = value.chars().find(|&c| bad(c)) {
        return Err(IdError::BadChar { field, value: value.to_owned(), ch });
    }
    if value.trim() != value {
        return Err(IdError::BadChar { field, value: value.to_owned(), ch: ' ' });
    }
    Ok(())
}

/// A member or a subsystem: the `client` of a message (`XRoadClientIdentifierType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId {
    instance: String,
    member_class: String,
    member_code: String,
    subsystem: Option<String>,
}

impl ClientId {
    /// A member (`MEMBER:instance/class/code`).
    pub fn member(instance: &str, member_class: &str, member_code: &str) -> Result<Self, IdError> {
        validate_code("xRoadInstance", instance)?;
        validate_code("memberClass", member_class)?;
        validate_code("memberCode", member_code)?;
        Ok(Self {
            instance: instance.to_owned(),
            member_class: member_class.to_owned(),
            member_code: member_code.to_owned(),
            subsystem: None,
        })
    }

    /// A subsystem (`SUBSYSTEM:instance/class/code/subsystem`).
    pub fn subsystem(instance: &str, member_class: &str, member_code: &str, subsystem: &str) -> Result<Self, IdError> {
        let mut id = Self::member(instance, member_class, member_code)?;
        validate_code("subsystemCode", subsystem)?;
        id.subsystem = Some(subsystem.to_owned());
        Ok(id)
    }

    /// The X-Road instance identifier.
    pub fn instance(&self) -> &str {
        &self.instance
    }
    /// The member class.
    pub fn member_class(&self) -> &str {
        &self.member_class
    }
    /// The member code.
    pub fn member_code(&self) -> &str {
        &self.member_code
    }
    /// The subsystem code, for a subsystem.
    pub fn subsystem_code(&self) -> Option<&str> {
        self.subsystem.as_deref()
    }
    /// The member this client belongs to (itself for a member).
    pub fn member_id(&self) -> ClientId {
        ClientId { subsystem: None, ..self.clone() }
    }
    /// `MEMBER` or `SUBSYSTEM`.
    pub fn object_type(&self) -> &'static str {
        if self.subsystem.is_some() { "SUBSYSTEM" } else { "MEMBER" }
    }
    /// The path without the object type: `EE/BUSINESS/code[/sub]`.
    pub fn path(&self) -> String {
        match &self.subsystem {
            Some(s) => format!("{}/{}/{}/{}", self.instance, self.member_class, self.member_code, s),
            None => format!("{}/{}/{}", self.instance, self.member_class, self.member_code),
        }
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object_type(), self.path())
    }
}

fn split_typed<'a>(
    value: &'a str,
    kind: &'static str,
    expected: &'static str,
) -> Result<(&'a str, Vec<&'a str>), IdError> {
    let malformed = || IdError::Malformed { kind, value: value.to_owned(), expected };
    let (ty, rest) = value.split_once(':').ok_or_else(malformed)?;
    Ok((ty, rest.split('/').collect()))
}

impl std::str::FromStr for ClientId {
    type Err = IdError;
    /// Parses `MEMBER:EE/CLASS/CODE` or `SUBSYSTEM:EE/CLASS/CODE/SUB`.
    fn from_str(value: &str) -> Result<Self, IdError> {
        const EXPECTED: &str = "MEMBER:<instance>/<class>/<code> or SUBSYSTEM:<instance>/<class>/<code>/<subsystem>";
        let (ty, parts) = split_typed(value, "client", EXPECTED)?;
        match (ty, parts.as_slice()) {
            ("MEMBER", [i, c, m]) => Self::member(i, c, m),
            ("SUBSYSTEM", [i, c, m, s]) => Self::subsystem(i, c, m, s),
            _ => Err(IdError::Malformed { kind: "client", value: value.to_owned(), expected: EXPECTED }),
        }
    }
}

impl TryFrom<String> for ClientId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        value.parse()
    }
}
impl From<ClientId> for String {
    fn from(value: ClientId) -> String {
        value.to_string()
    }
}

/// A service of a provider (`XRoadServiceIdentifierType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceId {
    provider: ClientId,
    service_code: String,
    version: Option<String>,
}

impl ServiceId {
    /// A service of `provider`, optionally versioned.
    pub fn new(provider: ClientId, service_code: &str, version: Option<&str>) -> Result<Self, IdError> {
        validate_code("serviceCode", service_code)?;
        if let Some(v) = version {
            validate_code("serviceVersion", v)?;
        }
        Ok(Self { provider, service_code: service_code.to_owned(), version: version.map(str::to_owned) })
    }
    /// The member or subsystem that provides the service.
    pub fn provider(&self) -> &ClientId {
        &self.provider
    }
    /// The service code.
    pub fn service_code(&self) -> &str {
        &self.service_code
    }
    /// The service version, if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

impl fmt::Display for ServiceId {
    /// `SERVICE:EE/CLASS/CODE[/SUB]/serviceCode[/version]`; a member's own
    /// service with a version is `SERVICE:EE/CLASS/CODE//serviceCode/version`
    /// (an empty subsystem), which would otherwise read as a subsystem's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SERVICE:{}/", self.provider.path())?;
        if self.provider.subsystem.is_none() && self.version.is_some() {
            f.write_str("/")?;
        }
        f.write_str(&self.service_code)?;
        if let Some(v) = &self.version {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ServiceId {
    type Err = IdError;
    /// Parses `SERVICE:EE/CLASS/CODE[/SUB]/serviceCode[/version]`. Five parts
    /// after the type mean, like X-Road's own encoding, a subsystem with an
    /// unversioned service; a member's own versioned service has an empty
    /// subsystem (`EE/CLASS/CODE//serviceCode/version`), as printed.
    fn from_str(value: &str) -> Result<Self, IdError> {
        const EXPECTED: &str = "SERVICE:<instance>/<class>/<code>[/<subsystem>]/<service>[/<version>]";
        let (ty, p) = split_typed(value, "service", EXPECTED)?;
        let bad = || IdError::Malformed { kind: "service", value: value.to_owned(), expected: EXPECTED };
        if ty != "SERVICE" {
            return Err(bad());
        }
        match p.as_slice() {
            [i, c, m, s] => Self::new(ClientId::member(i, c, m)?, s, None),
            [i, c, m, sub, s] => Self::new(ClientId::subsystem(i, c, m, sub)?, s, None),
            [i, c, m, "", s, v] => Self::new(ClientId::member(i, c, m)?, s, Some(v)),
            [i, c, m, sub, s, v] => Self::new(ClientId::subsystem(i, c, m, sub)?, s, Some(v)),
            _ => Err(bad()),
        }
    }
}
impl TryFrom<String> for ServiceId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        value.parse()
    }
}
impl From<ServiceId> for String {
    fn from(value: ServiceId) -> String {
        value.to_string()
    }
}

/// A security server: its owner member and its server code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecurityServerId {
    owner: ClientId,
    server_code: String,
}

impl SecurityServerId {
    /// The server `server_code` owned by member `owner`.
    pub fn new(owner: ClientId, server_code: &str) -> Result<Self, IdError> {
        validate_code("serverCode", server_code)?;
        Ok(Self { owner: owner.member_id(), server_code: server_code.to_owned() })
    }
    /// The owner member.
    pub fn owner(&self) -> &ClientId {
        &self.owner
    }
    /// The server code.
    pub fn server_code(&self) -> &str {
        &self.server_code
    }
}
impl fmt::Display for SecurityServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SERVER:{}/{}", self.owner.path(), self.server_code)
    }
}
impl std::str::FromStr for SecurityServerId {
    type Err = IdError;
    fn from_str(value: &str) -> Result<Self, IdError> {
        const EXPECTED: &str = "SERVER:<instance>/<class>/<code>/<serverCode>";
        let (ty, p) = split_typed(value, "security server", EXPECTED)?;
        match (ty, p.as_slice()) {
            ("SERVER", [i, c, m, s]) => Self::new(ClientId::member(i, c, m)?, s),
            _ => Err(IdError::Malformed { kind: "security server", value: value.to_owned(), expected: EXPECTED }),
        }
    }
}
impl TryFrom<String> for SecurityServerId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        value.parse()
    }
}
impl From<SecurityServerId> for String {
    fn from(value: SecurityServerId) -> String {
        value.to_string()
    }
}

/// A global group, defined in the global configuration (`GLOBALGROUP:EE/code`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GlobalGroupId {
    instance: String,
    group_code: String,
}
impl GlobalGroupId {
    /// The global group `group_code` of `instance`.
    pub fn new(instance: &str, group_code: &str) -> Result<Self, IdError> {
        validate_code("xRoadInstance", instance)?;
        validate_code("groupCode", group_code)?;
        Ok(Self { instance: instance.to_owned(), group_code: group_code.to_owned() })
    }
    /// The group code.
    pub fn group_code(&self) -> &str {
        &self.group_code
    }
}
impl fmt::Display for GlobalGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GLOBALGROUP:{}/{}", self.instance, self.group_code)
    }
}

/// A local group, defined per client on one security server (`LOCALGROUP:code`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalGroupId {
    group_code: String,
}
impl LocalGroupId {
    /// The local group `group_code`.
    pub fn new(group_code: &str) -> Result<Self, IdError> {
        validate_code("groupCode", group_code)?;
        Ok(Self { group_code: group_code.to_owned() })
    }
}
impl fmt::Display for LocalGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LOCALGROUP:{}", self.group_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_textual_forms() {
        for s in ["MEMBER:EE/COMPANY/FOOBAR", "SUBSYSTEM:EE/COMPANY/FOOBAR/SUBSYSTEM"] {
            assert_eq!(s.parse::<ClientId>().unwrap().to_string(), s);
        }
        for s in ["SERVICE:EE/BUSINESS/JODA/getState", "SERVICE:JP/GOV/1234/care/getTemp/v1"] {
            assert_eq!(s.parse::<ServiceId>().unwrap().to_string(), s);
        }
        let server: SecurityServerId = "SERVER:EE/BUSINESS/123456789/bambi".parse().unwrap();
        assert_eq!(server.to_string(), "SERVER:EE/BUSINESS/123456789/bambi");
        assert_eq!(GlobalGroupId::new("EE", "perearstid").unwrap().to_string(), "GLOBALGROUP:EE/perearstid");
        assert_eq!(LocalGroupId::new("lokaalgrupp").unwrap().to_string(), "LOCALGROUP:lokaalgrupp");
    }

    /// Property-test finding (identifiers_print_and_parse_back): a member's
    /// own service with a version printed as `SERVICE:EE/C/M/svc/v1`, which
    /// reads back as subsystem `svc`'s service `v1`.
    #[test]
    fn property_identifiers_a_members_versioned_service_prints_unambiguously() {
        let member = ClientId::member("EE", "GOV", "1234").unwrap();
        let service = ServiceId::new(member, "getRandom", Some("v1")).unwrap();
        assert_eq!(service.to_string(), "SERVICE:EE/GOV/1234//getRandom/v1");
        assert_eq!(service.to_string().parse::<ServiceId>().unwrap(), service);
        let sub: ServiceId = "SERVICE:EE/GOV/1234/getRandom/v1".parse().unwrap();
        assert_eq!(sub.provider().subsystem_code(), Some("getRandom"));
    }

    #[test]
    fn rejects_forbidden_characters() {
        for bad in ["a:b", "a/b", "a;b", "a\\b", "a%b", "a\nb", "", " ", " lead"] {
            assert!(validate_code("memberCode", bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_code("memberCode", "株式会社-1.x_y").is_ok());
        let long = "x".repeat(MAX_CODE_LEN + 1);
        assert!(matches!(validate_code("memberCode", &long), Err(IdError::TooLong { .. })));
    }

    #[test]
    fn rejects_wrong_part_counts() {
        assert!("MEMBER:EE/COMPANY".parse::<ClientId>().is_err());
        assert!("SUBSYSTEM:EE/COMPANY/FOOBAR".parse::<ClientId>().is_err());
        assert!("SERVER:EE/COMPANY/FOOBAR".parse::<SecurityServerId>().is_err());
    }
}

//! The documented configuration files in `deploy/etc/` (what the packages
//! install in `/etc/musubi/`): each is valid as shipped, lists every setting
//! the program reads, and shows each optional setting at its real default.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/etc").join(name)
}

/// The file's text with every commented-out setting and table header
/// (`#name = …`, `#[table]`, `#[[table]]`) put back in.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with('[') || rest.split_once(" = ").is_some_and(|(k, _)| is_key(k)) => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Keys of `model` (every setting, serialised) missing from `given`, as dotted paths.
fn missing(model: &toml::Table, given: &toml::Table, at: &str, out: &mut Vec<String>) {
    for (k, v) in model {
        let path = format!("{at}{k}");
        match (v, given.get(k)) {
            (_, None) => out.push(path),
            (toml::Value::Table(m), Some(toml::Value::Table(g))) => missing(m, g, &format!("{path}."), out),
            (toml::Value::Array(m), Some(toml::Value::Array(g))) => {
                if let (Some(toml::Value::Table(m)), Some(toml::Value::Table(g))) = (m.first(), g.first()) {
                    missing(m, g, &format!("{path}[]."), out);
                }
            }
            _ => {}
        }
    }
}

/// Commented-out settings (in `all`, not in `shipped`) whose shown value is
/// not the default the program uses (`defaults`); optional settings without a
/// default and lists that are empty by default are examples, not defaults.
fn wrong_defaults(all: &toml::Table, shipped: &toml::Table, defaults: &toml::Table, at: &str, out: &mut Vec<String>) {
    let empty = toml::Table::new();
    for (k, v) in all {
        let path = format!("{at}{k}");
        let default = defaults.get(k);
        match (v, default) {
            (toml::Value::Table(v), Some(toml::Value::Table(d))) => {
                let s = match shipped.get(k) {
                    Some(toml::Value::Table(s)) => s,
                    _ => &empty,
                };
                wrong_defaults(v, s, d, &format!("{path}."), out);
            }
            (_, Some(toml::Value::Array(d))) if d.is_empty() => {}
            (v, Some(d)) if !shipped.contains_key(k) && v != d => {
                out.push(format!("{path}: shown as {v}, the default is {d}"));
            }
            _ => {}
        }
    }
}

fn check<T: Serialize + DeserializeOwned>(name: &str, prefix: &str, stand_ins: &[(&str, &str)]) {
    let path = deploy_file(name);
    let shipped = musubi_admin::conffile::load::<T>(&path, prefix, Vec::new(), stand_ins)
        .unwrap_or_else(|e| panic!("{name} as shipped: {e}"));
    let text = std::fs::read_to_string(&path).unwrap();
    let all_text = uncommented(&text);
    let all: T = toml::from_str(&all_text).unwrap_or_else(|e| panic!("{name} with every setting uncommented: {e}"));
    let all_table: toml::Table = toml::from_str(&all_text).unwrap();
    let model = toml::Table::try_from(&all).unwrap();
    let mut out = Vec::new();
    missing(&model, &all_table, "", &mut out);
    assert!(out.is_empty(), "{name} does not document {}", out.join(", "));
    // Stand-ins are required settings the program fills in: they have no default.
    let mut defaults = toml::Table::try_from(&shipped.value).unwrap();
    for (k, _) in stand_ins {
        defaults.remove(*k);
    }
    wrong_defaults(&all_table, &shipped.table, &defaults, "", &mut out);
    assert!(out.is_empty(), "{name}: {}", out.join("; "));
}

#[test]
fn security_server_toml_documents_every_setting_at_its_default() {
    check::<musubi_security_server::conf::ServerConf>(
        "security-server.toml",
        musubi_security_server::conf::ENV_PREFIX,
        &musubi_security_server::conf::STAND_INS,
    );
}

#[test]
fn central_server_toml_documents_every_setting_at_its_default() {
    check::<musubi_central_server::CentralConf>("central-server.toml", musubi_central_server::ENV_PREFIX, &[]);
}

#[test]
fn adapter_toml_documents_every_setting_at_its_default() {
    check::<musubi_adapter::AdapterConfig>("adapter.toml", musubi_adapter::ENV_PREFIX, &[]);
}

#[test]
fn the_checks_find_an_undocumented_setting_and_a_wrong_default() {
    let model: toml::Table = toml::from_str("a = 1\n[t]\nb = 2\nc = 3\n").unwrap();
    let given: toml::Table = toml::from_str(&uncommented("a = 1\n#[t]\n#b = 5\n")).unwrap();
    let mut out = Vec::new();
    missing(&model, &given, "", &mut out);
    assert_eq!(out, ["t.c"]);
    out.clear();
    wrong_defaults(&given, &toml::from_str("a = 1").unwrap(), &model, "", &mut out);
    assert_eq!(out, ["t.b: shown as 5, the default is 2"]);
}

// --- systemd units (deploy/systemd) ------------------------------------------

/// One component as packaged: its unit, binary, configuration file and the
/// shipped file's settings with the program's defaults filled in.
struct Component {
    name: &'static str,
    start: &'static str,
    settings: toml::Table,
}

fn components() -> Vec<Component> {
    fn settings<T: Serialize + DeserializeOwned>(file: &str, prefix: &str, stand_ins: &[(&str, &str)]) -> toml::Table {
        let loaded = musubi_admin::conffile::load::<T>(&deploy_file(file), prefix, Vec::new(), stand_ins)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        toml::Table::try_from(&loaded.value).unwrap()
    }
    use musubi_security_server::conf;
    vec![
        Component {
            name: "security-server",
            start: "",
            settings: settings::<conf::ServerConf>("security-server.toml", conf::ENV_PREFIX, &conf::STAND_INS),
        },
        Component {
            name: "central-server",
            start: "",
            settings: settings::<musubi_central_server::CentralConf>(
                "central-server.toml",
                musubi_central_server::ENV_PREFIX,
                &[],
            ),
        },
        Component {
            name: "adapter",
            start: "run ",
            settings: settings::<musubi_adapter::AdapterConfig>("adapter.toml", musubi_adapter::ENV_PREFIX, &[]),
        },
    ]
}

/// The `[Service]` settings of a unit file, in order (a key may repeat).
fn service_section(text: &str) -> Vec<(String, String)> {
    let mut in_service = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service
            && !line.starts_with('#')
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

/// Every port a `*_listen` setting (at any depth) binds.
fn listen_ports(settings: &toml::Table, out: &mut Vec<(String, u16)>) {
    for (k, v) in settings {
        match v {
            toml::Value::Table(t) => listen_ports(t, out),
            toml::Value::String(s) if k.ends_with("_listen") => {
                let addr: std::net::SocketAddr = s.parse().unwrap_or_else(|e| panic!("{k} = {s:?}: {e}"));
                out.push((k.clone(), addr.port()));
            }
            _ => {}
        }
    }
}

#[test]
fn systemd_units_run_unprivileged_sandboxed_and_notify_readiness() {
    for c in components() {
        let unit_name = format!("musubi-{}.service", c.name);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd").join(&unit_name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let service = service_section(&text);
        let get =
            |key: &str| -> Vec<&str> { service.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect() };
        let one = |key: &str| -> &str {
            match get(key)[..] {
                [v] => v,
                ref vs => panic!("{unit_name}: {key} is set {} times", vs.len()),
            }
        };
        let binary = format!("/usr/bin/musubi-{}", c.name);
        let config = format!("/etc/musubi/{}.toml", c.name);
        assert_eq!(one("Type"), "notify", "{unit_name}");
        assert_eq!(one("ExecStartPre"), format!("{binary} check-config --config {config}"), "{unit_name}");
        assert_eq!(one("ExecStart"), format!("{binary} {}--config {config}", c.start), "{unit_name}");
        for (key, value) in [
            ("User", "musubi"),
            ("Group", "musubi"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("MemoryDenyWriteExecute", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("UMask", "0077"),
            ("StandardOutput", "journal"),
            ("StandardError", "journal"),
            ("StateDirectoryMode", "0700"),
            ("Restart", "on-failure"),
        ] {
            assert_eq!(one(key), value, "{unit_name}: {key}");
        }
        // The only writable place (ProtectSystem=strict) is the state folder
        // systemd makes, and the shipped configuration keeps its state there.
        let state = one("StateDirectory");
        assert_eq!(state, format!("musubi/{}", c.name), "{unit_name}");
        let state_dir = c.settings["state_dir"].as_str().unwrap();
        assert_eq!(state_dir, format!("/var/lib/{state}"), "{}.toml's state_dir", c.name);
        if let Some(db) = c.settings.get("database").and_then(|v| v.as_str()) {
            assert!(db.starts_with(&format!("{state_dir}/")), "{}.toml's database {db} is outside {state_dir}", c.name);
        }
        // CAP_NET_BIND_SERVICE exactly where the shipped configuration binds a
        // port below 1024, and no other capability anywhere.
        let mut ports = Vec::new();
        listen_ports(&c.settings, &mut ports);
        assert!(!ports.is_empty(), "{unit_name}: no *_listen setting found");
        let low: Vec<_> = ports.iter().filter(|(_, p)| *p < 1024).collect();
        let caps = if low.is_empty() { "" } else { "CAP_NET_BIND_SERVICE" };
        assert_eq!(one("AmbientCapabilities"), caps, "{unit_name}: ports {ports:?}");
        assert_eq!(one("CapabilityBoundingSet"), caps, "{unit_name}: ports {ports:?}");
        // Stopping waits for the exchanges in flight and the log's flush.
        let stop: u64 = one("TimeoutStopSec").parse().unwrap();
        assert!(
            stop >= musubi_security_server::DRAIN_TIMEOUT.as_secs() + 10,
            "{unit_name}: TimeoutStopSec={stop} leaves no time for the drain"
        );
    }
}

/// systemd's own checks on the units, in a scratch root holding them, stand-in
/// binaries and the host's targets: `systemd-analyze verify` finds no fault
/// (an unknown key or a bad value is a warning it prints), and
/// `systemd-analyze security` rates each unit's exposure "OK" (below 2.0 of 10).
#[test]
fn systemd_accepts_the_units_and_rates_their_sandbox_ok() {
    let have =
        std::process::Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success());
    let targets = Path::new("/lib/systemd/system/sysinit.target");
    if !have || !targets.exists() {
        assert!(
            std::env::var("MUSUBI_REQUIRE_PEERS").as_deref() != Ok("1"),
            "systemd-analyze is missing and MUSUBI_REQUIRE_PEERS=1; install Debian's systemd package"
        );
        println!("skipped: systemd-analyze or systemd's units are not installed");
        return;
    }
    let root = crate::scratch("systemd-units");
    let units = root.join("lib/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    for entry in std::fs::read_dir("/lib/systemd/system").unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_str().unwrap_or("");
        if name.ends_with(".target") || name.ends_with(".slice") {
            std::fs::copy(entry.path(), units.join(name)).ok();
        }
    }
    let mut names = Vec::new();
    for c in components() {
        use std::os::unix::fs::PermissionsExt as _;
        let name = format!("musubi-{}.service", c.name);
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd").join(&name), units.join(&name))
            .unwrap();
        let bin = root.join(format!("usr/bin/musubi-{}", c.name));
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        names.push(name);
    }
    let analyze = |args: &[&str]| {
        let out = std::process::Command::new("systemd-analyze")
            .args(args)
            .arg(format!("--root={}", root.display()))
            .args(&names)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr)
    };
    let (ok, _, stderr) = analyze(&["verify"]);
    assert!(ok && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
    let (ok, stdout, stderr) = analyze(&["security", "--offline=true", "--no-pager"]);
    assert!(ok, "systemd-analyze security: {stderr}");
    let mut rated = 0;
    for line in stdout.lines().filter(|l| l.contains("Overall exposure level")) {
        let level: f64 = line
            .split(": ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("cannot read {line:?}"));
        assert!(level < 2.0, "{line}");
        rated += 1;
    }
    assert_eq!(rated, names.len(), "systemd-analyze security rated {rated} units:\n{stdout}");
    std::fs::remove_dir_all(&root).ok();
}

// --- the operator guide (deploy/README.md) ------------------------------------

/// The Musubi and dpkg commands in the guide's `sh` blocks, as word lists
/// (without a leading `sudo -u musubi` or `VAR=value`).
fn guide_commands() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words: Vec<String> =
            line.split_whitespace().take_while(|w| !w.starts_with('#')).map(str::to_string).collect();
        if words.starts_with(&["sudo".into(), "-u".into(), "musubi".into()]) {
            words.drain(..3);
        }
        while words.first().is_some_and(|w| w.contains('=') && !w.starts_with('-')) {
            words.remove(0);
        }
        if words.first().is_some_and(|w| w.starts_with("musubi") || w == "dpkg" || w == "deploy/build-packages") {
            out.push(words);
        }
    }
    out
}

/// The sources of the tests (and CI) that run the guide's commands.
fn test_sources() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut all = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    for dir in ["tests/it", "cli/tests", "security-server/tests", "central-server/tests", "adapter/tests"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("deploy.rs") {
                all.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    all
}

#[test]
fn the_operator_guides_commands_exist_and_are_the_ones_the_tests_run() {
    let commands = guide_commands();
    assert!(commands.len() >= 30, "the guide's commands were not found: {commands:?}");
    let sources = test_sources();
    let quoted = |w: &str| sources.contains(&format!("\"{w}\"")) || sources.contains(&format!(" {w} "));
    let mut faults = Vec::new();
    for words in &commands {
        let line = words.join(" ");
        let program = words[0].as_str();
        if program == "dpkg" || program == "deploy/build-packages" {
            let shape: Vec<&str> = words.iter().map(String::as_str).take_while(|w| !w.contains(".deb")).collect();
            if !sources.contains(&shape.join(" ")) {
                faults.push(format!("{line}: no test runs `{}`", shape.join(" ")));
            }
            continue;
        }
        // The subcommand path: the lower-case words before the first argument.
        let path: Vec<&str> = words[1..]
            .iter()
            .map(String::as_str)
            .take_while(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') && !w.starts_with('-'))
            .collect();
        let flags: Vec<&str> = words.iter().map(String::as_str).filter(|w| w.starts_with("--")).collect();
        let help = std::process::Command::new(crate::binary(program)).args(&path).arg("--help").output().unwrap();
        let help_text = String::from_utf8_lossy(&help.stdout);
        if !help.status.success() {
            faults.push(format!("{line}: `{program} {}` is not a command", path.join(" ")));
            continue;
        }
        for flag in &flags {
            if !help_text.contains(&format!("{flag} ")) && !help_text.contains(&format!("{flag}\n")) {
                faults.push(format!("{line}: {flag} is not a flag of `{program} {}`", path.join(" ")));
            }
        }
        // The tests run the same subcommand, with the same flags.
        let run = if path.is_empty() {
            true
        } else {
            let as_args = path.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ");
            sources.contains(&as_args) || sources.contains(&path.join(" "))
        };
        if !run {
            faults.push(format!("{line}: no test runs `{program} {}`", path.join(" ")));
        }
        for flag in &flags {
            if !quoted(flag) {
                faults.push(format!("{line}: no test passes {flag}"));
            }
        }
    }
    assert!(faults.is_empty(), "deploy/README.md:\n{}", faults.join("\n"));
}

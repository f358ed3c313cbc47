//! Loading the ECHONET Consortium's Machine Readable Appendix (MRA): JSON
//! definitions of device classes, from a directory the operator names (for
//! instance a copy installed by another ECHONET package). MRA files are
//! never part of this repository.
//!
//! What is read: `definitions.json` (`{"definitions": {…}}`, referenced by
//! `$ref`) and one file per class named `0xGGCC.json` with `eoj`,
//! `shortName` and `elProperties` (each with `epc`, `shortName`,
//! `validRelease` and `data`). Data of type `number` (formats `int8` to
//! `uint32`, `minimum`, `maximum`, `unit`, `multipleOf`), `state` (one byte,
//! `enum` of `edt` and `name`) and `oneOf` of those (a number with reserved
//! states such as "no data") are understood; anything else is read as raw
//! bytes. Built-in classes keep their built-in definitions.
//!
//! Loaded classes live for the rest of the process (they are installed once
//! at start, within the limits below).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::defs::{ClassDef, Kind, Num, PropDef, Special};

/// Most files read.
pub const MAX_FILES: usize = 1000;
/// Largest file read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most bytes read in all.
pub const MAX_TOTAL_BYTES: u64 = 32 * 1024 * 1024;

static LOADED: OnceLock<Vec<ClassDef>> = OnceLock::new();

/// Classes loaded from an MRA directory (empty when none was loaded).
pub fn loaded() -> &'static [ClassDef] {
    LOADED.get().map(Vec::as_slice).unwrap_or(&[])
}

/// Why an MRA directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MraError {
    /// Reading failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// A file is not JSON or not MRA.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Over a limit.
    #[error("{0}; point definitions_dir at the MRA's own folder")]
    TooMuch(String),
    /// No definitions file.
    #[error("no definitions.json under {0}; is this an MRA folder (mraData)?")]
    NoDefinitions(PathBuf),
}

fn read_json(path: &Path, total: &mut u64) -> Result<Value, MraError> {
    let io = |error| MraError::Io { path: path.to_path_buf(), error };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(MraError::TooMuch(format!("{} has {len} bytes, more than {MAX_FILE_BYTES}", path.display())));
    }
    *total += len;
    if *total > MAX_TOTAL_BYTES {
        return Err(MraError::TooMuch(format!("more than {MAX_TOTAL_BYTES} bytes of definitions")));
    }
    let text = std::fs::read(path).map_err(io)?;
    serde_json::from_slice(&text)
        .map_err(|e| MraError::Invalid { path: path.to_path_buf(), problem: format!("not JSON: {e}") })
}

/// Every `*.json` under `dir`, at most three levels down.
fn json_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), MraError> {
    let entries = std::fs::read_dir(dir).map_err(|error| MraError::Io { path: dir.to_path_buf(), error })?;
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() && depth < 3 {
            json_files(&path, depth + 1, out)?;
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
            if out.len() > MAX_FILES {
                return Err(MraError::TooMuch(format!("more than {MAX_FILES} JSON files under {}", dir.display())));
            }
        }
    }
    Ok(())
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn hex_u(v: &Value) -> Option<u64> {
    let s = v.as_str()?;
    u64::from_str_radix(s.trim_start_matches("0x").trim_start_matches("0X"), 16).ok()
}

/// Follows `$ref` (at most 8 hops).
fn resolve<'a>(mut v: &'a Value, defs: &'a Value) -> &'a Value {
    for _ in 0..8 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else { break };
        let name = r.rsplit('/').next().unwrap_or("");
        match defs.get(name) {
            Some(d) => v = d,
            None => break,
        }
    }
    v
}

fn special_of(name: &str) -> Special {
    let n = name.to_ascii_lowercase();
    if n.contains("overflow") {
        Special::Overflow
    } else if n.contains("underflow") {
        Special::Underflow
    } else if n.contains("unmeasur") {
        Special::Unmeasurable
    } else if n.contains("undefined") {
        Special::Undefined
    } else {
        Special::NoData
    }
}

fn states(v: &Value) -> Option<Vec<(u8, &'static str)>> {
    let items = v.get("enum")?.as_array()?;
    let mut out = Vec::new();
    for i in items {
        let edt = hex_u(i.get("edt")?).and_then(|e| u8::try_from(e).ok())?;
        let name = i.get("name").and_then(Value::as_str).unwrap_or("state");
        out.push((edt, leak(name)));
    }
    Some(out)
}

fn number(v: &Value, specials: Vec<(i64, Special)>) -> Option<Kind> {
    let (size, signed) = match v.get("format")?.as_str()? {
        "int8" => (1, true),
        "uint8" => (1, false),
        "int16" => (2, true),
        "uint16" => (2, false),
        "int32" => (4, true),
        "uint32" => (4, false),
        _ => return None,
    };
    let step = v.get("multipleOf").or_else(|| v.get("multiple")).and_then(Value::as_f64).unwrap_or(1.0);
    let exp = (step.log10().round() as i8).clamp(-6, 6);
    let unit = leak(v.get("unit").and_then(Value::as_str).unwrap_or(""));
    // MRA gives the bounds in units; the raw bounds are those divided by the step.
    let raw = |k: &str| v.get(k).and_then(Value::as_f64).map(|x| (x / 10f64.powi(i32::from(exp))).round() as i64);
    let (min, max) = (raw("minimum")?, raw("maximum")?);
    let special: &'static [(i64, Special)] = Vec::leak(specials);
    Some(Kind::Number(Num { size, signed, exp, unit, min, max, special }))
}

fn kind(data: &Value, defs: &Value) -> Kind {
    let d = resolve(data, defs);
    if let Some(alts) = d.get("oneOf").and_then(Value::as_array) {
        let alts: Vec<&Value> = alts.iter().map(|a| resolve(a, defs)).collect();
        let mut specials = Vec::new();
        for a in alts.iter().filter(|a| a.get("type").and_then(Value::as_str) == Some("state")) {
            for (edt, name) in a.get("enum").and_then(Value::as_array).into_iter().flatten().filter_map(|i| {
                Some((hex_u(i.get("edt")?)?, i.get("name").and_then(Value::as_str).unwrap_or("noData")))
            }) {
                specials.push((edt as i64, special_of(name)));
            }
        }
        if let Some(n) = alts.iter().find(|a| a.get("type").and_then(Value::as_str) == Some("number")) {
            // Reserved codes are raw bit patterns; a signed number sees them as negative.
            let signed = n.get("format").and_then(Value::as_str).is_some_and(|f| f.starts_with("int"));
            let size = match n.get("format").and_then(Value::as_str) {
                Some("int8" | "uint8") => 1,
                Some("int16" | "uint16") => 2,
                _ => 4,
            };
            let specials = specials
                .into_iter()
                .map(|(raw, s)| {
                    let bits = 8 * size;
                    if signed && raw >= 1i64 << (bits - 1) { (raw - (1i64 << bits), s) } else { (raw, s) }
                })
                .collect();
            return number(n, specials).unwrap_or(Kind::Raw);
        }
        return alts.iter().find_map(|a| states(a)).map_or(Kind::Raw, |s| Kind::States(Vec::leak(s)));
    }
    match d.get("type").and_then(Value::as_str) {
        Some("number") => number(d, Vec::new()).unwrap_or(Kind::Raw),
        Some("state") if d.get("size").and_then(Value::as_u64).unwrap_or(1) == 1 => {
            states(d).map_or(Kind::Raw, |s| Kind::States(Vec::leak(s)))
        }
        _ => Kind::Raw,
    }
}

/// Reads the MRA directory into class definitions (not installed).
pub fn read_dir(dir: &Path) -> Result<Vec<ClassDef>, MraError> {
    let mut files = Vec::new();
    json_files(dir, 0, &mut files)?;
    files.sort();
    let mut total = 0;
    let defs_path = files
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "definitions.json"))
        .ok_or_else(|| MraError::NoDefinitions(dir.to_path_buf()))?;
    let defs = read_json(defs_path, &mut total)?;
    let defs = defs.get("definitions").cloned().unwrap_or(defs);
    let mut classes = Vec::new();
    for path in &files {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
        if !(stem.len() == 6 && stem.starts_with("0x")) {
            continue;
        }
        let v = read_json(path, &mut total)?;
        let invalid = |problem: &str| MraError::Invalid { path: path.clone(), problem: problem.into() };
        let code = v.get("eoj").and_then(hex_u).and_then(|c| u16::try_from(c).ok()).ok_or_else(|| invalid("no eoj"))?;
        if code == 0x0000 || crate::defs::CLASSES.iter().any(|c| c.code == code) {
            continue;
        }
        let name = v.get("shortName").and_then(Value::as_str).ok_or_else(|| invalid("no shortName"))?;
        let mut props: Vec<PropDef> = Vec::new();
        for p in v.get("elProperties").and_then(Value::as_array).ok_or_else(|| invalid("no elProperties"))? {
            let latest = p.pointer("/validRelease/to").and_then(Value::as_str).is_none_or(|t| t == "latest");
            let (Some(epc), Some(short)) = (p.get("epc").and_then(hex_u), p.get("shortName").and_then(Value::as_str))
            else {
                continue;
            };
            let Ok(epc) = u8::try_from(epc) else { continue };
            if !latest || props.iter().any(|q| q.epc == epc) {
                continue;
            }
            let kind = p.get("data").map_or(Kind::Raw, |d| kind(d, &defs));
            props.push(PropDef { epc, name: leak(short), kind });
        }
        classes.push(ClassDef { code, name: leak(name), props: Vec::leak(props) });
    }
    Ok(classes)
}

/// Reads `dir` and installs its classes for the rest of the process; a
/// second call keeps the first set. Returns how many classes are installed.
pub fn install(dir: &Path) -> Result<usize, MraError> {
    if let Some(l) = LOADED.get() {
        tracing::warn!("MRA definitions are already loaded; {} keeps the first set", dir.display());
        return Ok(l.len());
    }
    let classes = read_dir(dir)?;
    let n = classes.len();
    let _ = LOADED.set(classes);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::{self, Reading};

    /// A small directory shaped like the MRA (written here; no MRA file is committed).
    fn sample(dir: &Path) {
        std::fs::create_dir_all(dir.join("definitions")).unwrap();
        std::fs::create_dir_all(dir.join("devices")).unwrap();
        std::fs::write(
            dir.join("definitions/definitions.json"),
            r#"{"definitions":{
                "number_-127-125Celsius":{"type":"number","format":"int8","minimum":-127,"maximum":125,"unit":"Celsius"},
                "state_unmeasurable":{"type":"state","size":1,"enum":[{"edt":"0x7E","name":"unmeasurable"}]}
            }}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("devices/0x0135.json"),
            r##"{"eoj":"0x0135","shortName":"airCleaner","elProperties":[
                {"epc":"0xA0","shortName":"airFlowLevel","validRelease":{"from":"A","to":"latest"},
                 "data":{"type":"state","size":1,"enum":[{"edt":"0x41","name":"auto"},{"edt":"0x31","name":"level1"}]}},
                {"epc":"0xE0","shortName":"dust","validRelease":{"from":"A","to":"M"},"data":{"type":"raw"}},
                {"epc":"0xE0","shortName":"dustDensity","validRelease":{"from":"N","to":"latest"},
                 "data":{"type":"number","format":"uint16","minimum":0,"maximum":6553.3,"unit":"ug/m3","multipleOf":0.1}},
                {"epc":"0xE1","shortName":"outletTemperature","validRelease":{"from":"A","to":"latest"},
                 "data":{"oneOf":[{"$ref":"#/definitions/number_-127-125Celsius"},{"$ref":"#/definitions/state_unmeasurable"}]}}
            ]}"##,
        )
        .unwrap();
        // A built-in class is not overridden.
        std::fs::write(dir.join("devices/0x0130.json"), r#"{"eoj":"0x0130","shortName":"x","elProperties":[]}"#)
            .unwrap();
    }

    #[test]
    fn reads_numbers_states_and_reserved_values_of_a_class() {
        let dir = std::env::temp_dir().join(format!("musubi-mra-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        sample(&dir);
        let classes = read_dir(&dir).unwrap();
        assert_eq!(classes.len(), 1);
        let c = &classes[0];
        assert_eq!((c.code, c.name), (0x0135, "airCleaner"));
        let names: Vec<&str> = c.props.iter().map(|p| p.name).collect();
        assert_eq!(names, vec!["airFlowLevel", "dustDensity", "outletTemperature"]);
        assert_eq!(install(&dir).unwrap(), 1);
        let none = |_: u8| None;
        assert_eq!(defs::decode(0x0135, 0xA0, &[0x41], &none), Reading::State("auto"));
        assert_eq!(defs::decode(0x0135, 0xE0, &[0x01, 0x00], &none).to_string(), "25.6");
        assert_eq!(defs::decode(0x0135, 0xE1, &[0x7E], &none), Reading::Special(Special::Unmeasurable));
        assert_eq!(defs::decode(0x0135, 0xE1, &[0xFB], &none).to_string(), "-5");
        assert_eq!(defs::epc_named(0x0135, "dustDensity"), Some(0xE0));
        assert_eq!(defs::encode(0x0135, 0xA0, "level1"), Ok(vec![0x31]));
        assert!(defs::encode(0x0135, 0xE0, "7000").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_folder_without_definitions_is_refused_with_a_hint() {
        let dir = std::env::temp_dir().join(format!("musubi-mra-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = read_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("no definitions.json"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

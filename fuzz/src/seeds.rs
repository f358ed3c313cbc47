//! Writes every fuzz target's seed corpus: `musubi-fuzz-seeds OUT [CONFORMANCE]`
//! makes `OUT/<target>/<name>` for the inputs of [`musubi_fuzz::seeds`].

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: musubi-fuzz-seeds OUT_DIR [CONFORMANCE_DIR]");
        return ExitCode::from(2);
    };
    let conformance = args.next().map(PathBuf::from);
    let seeds = match musubi_fuzz::seeds(conformance.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("musubi-fuzz-seeds: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (target, name, bytes) in &seeds {
        let dir = out.join(target);
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(name), bytes)) {
            eprintln!("musubi-fuzz-seeds: {}: {e}", dir.join(name).display());
            return ExitCode::FAILURE;
        }
    }
    println!("{} seeds in {}", seeds.len(), out.display());
    ExitCode::SUCCESS
}

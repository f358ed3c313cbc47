//! WSDL documents a provider publishes (`musubi_wsdl::parse`), as the
//! security server reads them when a service description is added or
//! refreshed. Each service code and version is listed once, and an error
//! names a line of the document.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match musubi_wsdl::parse(data) {
        Ok(parsed) => {
            let mut seen = std::collections::HashSet::new();
            for op in &parsed.operations {
                assert!(seen.insert((&op.code, &op.version)), "{} listed twice", op.code);
            }
        }
        Err(e) => {
            let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
            assert!((1..=lines).contains(&e.line), "error at line {} of a {lines}-line document", e.line);
        }
    }
});

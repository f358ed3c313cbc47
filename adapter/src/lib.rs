//! The Musubi ECHONET Lite adapter: turns home devices into X-Road services.
//!
//! Built so far: the frame codec ([`frame`]), the per-device pacing rules
//! ([`pacing`]) and how a simulated object answers ([`sim`]). Transport, discovery, device definitions, services and the
//! simulator follow (issue 5); the demo still uses a small built-in SOAP
//! provider.

pub mod frame;
pub mod pacing;
pub mod sim;

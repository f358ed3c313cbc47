//! The `musubi` command-line tool. For now it holds `musubi demo`: the whole
//! network on one machine (a dev CA, two security servers, a provider), which
//! the end-to-end tests start too.

#![warn(missing_docs)]

pub mod admin;
pub mod bench;
pub mod demo;
pub mod devpki;

//! WSDL 1.1 parsing (operations → service codes and versions) and generation
//! for adapter services.
//!
//! Not built yet: the services issue fills this crate. It is empty on purpose;
//! nothing here pretends to work.

//! Outrider host.

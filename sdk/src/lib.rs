//! Outrider plugin SDK.

//! `outrider:plugin/state` host implementation.

use std::time::Duration;

use crate::runtime::bindings::v0_1_1::state::{Error, Host};
use crate::runtime::call::CallContext;

use super::StateError;

const NO_TARGET: &str = "state needs a configured target (not available in this call)";

impl Host for CallContext {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(match &self.state_scope {
            Some(scope) => self.caps.state.get(scope, &key),
            None => None,
        })
    }

    fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let Some(scope) = &self.state_scope else {
            return Ok(Err(Error::Unsupported(NO_TARGET.to_owned())));
        };
        let ttl = ttl_ms.map(Duration::from_millis);
        Ok(match self.caps.state.set(scope, key, value, ttl) {
            Ok(()) => Ok(()),
            Err(StateError::TooLarge) => Err(Error::TooLarge),
        })
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        if let Some(scope) = &self.state_scope {
            self.caps.state.delete(scope, &key);
        }
        Ok(())
    }
}

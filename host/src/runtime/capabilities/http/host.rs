//! `outrider:plugin/http` host implementation.

use std::time::Duration;

use crate::runtime::bindings::v0_1_1::http::{Error, Host, Request, Response};
use crate::runtime::bindings::v0_1_1::types::Entry;
use crate::runtime::call::CallContext;

use super::{HttpFailure, OutboundRequest};

impl Host for CallContext {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, Error>> {
        let outbound = OutboundRequest {
            method: request.method,
            url: request.url,
            headers: request
                .headers
                .into_iter()
                .map(|e| (e.key, e.value))
                .collect(),
            body: request.body,
            timeout: request
                .timeout_ms
                .map(|ms| Duration::from_millis(ms.into())),
            follow_redirects: request.follow_redirects,
        };
        let budget = self.remaining();
        let http = self.caps.http.clone();
        match http.send(outbound, &self.allowlist, budget).await {
            Ok(response) => Ok(Ok(Response {
                status: response.status,
                headers: response
                    .headers
                    .into_iter()
                    .map(|(key, value)| Entry { key, value })
                    .collect(),
                body: response.body,
                truncated: response.truncated,
            })),
            Err(HttpFailure::Denied(reason)) => {
                self.record_denial("http", &reason);
                Ok(Err(Error::Denied(reason)))
            }
            Err(HttpFailure::InvalidRequest(m)) => Ok(Err(Error::InvalidRequest(m))),
            Err(HttpFailure::Timeout) => Ok(Err(Error::Timeout)),
            Err(HttpFailure::Transport(m)) => Ok(Err(Error::Transport(m))),
            Err(HttpFailure::BodyTooLarge) => Ok(Err(Error::BodyTooLarge)),
        }
    }
}

//! `outrider:plugin/tcp` host implementation (unsupported for now).

use wasmtime::component::Resource;

use crate::runtime::bindings::v0_1_0::tcp::{ConnectOptions, Error, Host, HostConnection};
use crate::runtime::call::CallContext;

use super::{TcpConnection, UNSUPPORTED};

fn unsupported() -> Error {
    Error::Unsupported(UNSUPPORTED.to_owned())
}

impl Host for CallContext {
    async fn connect(
        &mut self,
        _options: ConnectOptions,
    ) -> wasmtime::Result<Result<Resource<TcpConnection>, Error>> {
        Ok(Err(unsupported()))
    }
}

impl HostConnection for CallContext {
    async fn session(
        &mut self,
        _conn: Resource<TcpConnection>,
    ) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(None)
    }

    async fn write(
        &mut self,
        _conn: Resource<TcpConnection>,
        _bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        Ok(Err(unsupported()))
    }

    async fn read(
        &mut self,
        _conn: Resource<TcpConnection>,
        _max: u32,
        _timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, Error>> {
        Ok(Err(unsupported()))
    }

    async fn release(
        &mut self,
        conn: Resource<TcpConnection>,
        _session: Vec<u8>,
    ) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }

    async fn drop(&mut self, conn: Resource<TcpConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

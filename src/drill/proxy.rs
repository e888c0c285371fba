//! A TCP proxy in front of a server that can cut the network to it: the drill's `partition`.
//!
//! Until [`Proxy::cut`] it forwards bytes both ways. At the cut it stops forwarding in both
//! directions *without closing a socket*: clients see a hang, not a reset, which is what a
//! dropped network link or a frozen host looks like. Connections made after the cut are
//! accepted and then never answered (a host that accepts TCP and never speaks). Every socket
//! is closed when the proxy is dropped. It never reads what it forwards.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// The longest the proxy waits to reach the upstream server for a new client.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(5);

/// A running proxy on 127.0.0.1; stops (closing every socket) when dropped.
pub struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    stop: watch::Sender<bool>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::Internal(format!("the drill's proxy cannot listen: {e}")))?;
        Self::start_on(listener, upstream)
    }

    /// [`Proxy::start`] on a listener already bound (a port of the caller's choosing).
    pub fn start_on(listener: TcpListener, upstream: SocketAddr) -> Result<Proxy> {
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Internal(format!("the drill's proxy has no address: {e}")))?;
        let (cut, cut_rx) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(accept_loop(listener, upstream, cut_rx, stop_rx));
        Ok(Proxy { addr, cut, stop })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops forwarding in both directions, keeping every socket open (a hang, not a reset).
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }

    /// True after [`Proxy::cut`].
    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Waits until the flag turns true (or its sender is gone).
async fn raised(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|v| *v).await;
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    cut: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = raised(&mut stop) => return,
            a = listener.accept() => a,
        };
        let Ok((client, _)) = accepted else {
            // Out of file descriptors and the like: wait a little, keep serving.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(serve(client, upstream, cut.clone(), stop.clone()));
    }
}

/// One client: forwards until the cut, then holds both sockets silent until the proxy stops.
async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    mut cut: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = client.set_nodelay(true);
    if *cut.borrow() {
        // Accept and never answer.
        let _ = raised(&mut stop).await;
        return;
    }
    let server = tokio::select! {
        _ = raised(&mut cut) => {
            let _ = raised(&mut stop).await;
            return;
        }
        s = tokio::time::timeout(UPSTREAM_CONNECT, TcpStream::connect(upstream)) => s,
    };
    let Ok(Ok(server)) = server else {
        return; // the client sees the connection closed, as with the server down
    };
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = tokio::spawn(pump(client_read, server_write, cut.clone(), stop.clone()));
    let down = tokio::spawn(pump(server_read, client_write, cut, stop));
    let _ = up.await;
    let _ = down.await;
}

/// Copies `from` to `to` until either end closes or the cut; after the cut it keeps both
/// halves (open, silent) until the proxy stops.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            _ = raised(&mut cut) => break,
            _ = raised(&mut stop) => return,
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
        };
        tokio::select! {
            _ = raised(&mut cut) => break,
            _ = raised(&mut stop) => return,
            w = to.write_all(&buf[..n]) => if w.is_err() { return },
        }
    }
    let _ = raised(&mut stop).await;
    drop((from, to));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes go through before the cut; after it a read on the client side waits (a hang,
    /// not a reset or an end of stream), and a new connection is accepted but never answered.
    #[tokio::test]
    async fn after_the_cut_the_proxy_hangs_instead_of_closing() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = echo.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let proxy = Proxy::start(echo_addr).await.unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");

        proxy.cut();
        assert!(proxy.is_cut());
        c.write_all(b"more").await.unwrap();
        let read = tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf)).await;
        assert!(
            read.is_err(),
            "a read after the cut must hang, got {read:?}"
        );

        let mut late = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        late.write_all(b"hello").await.unwrap();
        let read = tokio::time::timeout(Duration::from_millis(300), late.read(&mut buf)).await;
        assert!(
            read.is_err(),
            "a connection after the cut must hang, got {read:?}"
        );

        drop(proxy);
        let closed = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "dropping the proxy closes its sockets: {closed:?}"
        );
    }
}

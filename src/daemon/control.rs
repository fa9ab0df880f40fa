//! The daemon's side of the control socket: requests go to the main loop over a channel,
//! so the state is never shared with the socket tasks.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use portcullis_control::data::Reply;
use portcullis_control::{
    Command, ErrorBody, ErrorKind, Handler, Peer, ServerConfig, bind_socket, serve,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// One command for the main loop, with the way back.
pub struct ControlRequest {
    /// What the client asked.
    pub command: Command,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Reply, ErrorBody>>,
}

struct ChannelHandler {
    tx: mpsc::Sender<ControlRequest>,
}

impl Handler for ChannelHandler {
    async fn handle(&self, peer: Peer, command: Command) -> Result<Reply, ErrorBody> {
        tracing::debug!(uid = peer.uid, pid = ?peer.pid, cmd = command.name(), "control request");
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(ControlRequest { command, reply })
            .await
            .is_err()
        {
            return Err(ErrorBody::new(
                ErrorKind::Internal,
                "the daemon is shutting down",
            ));
        }
        rx.await.unwrap_or_else(|_| {
            Err(ErrorBody::new(
                ErrorKind::Internal,
                "the daemon dropped the request",
            ))
        })
    }
}

/// The running socket server.
pub struct ControlSocket {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    path: std::path::PathBuf,
}

impl ControlSocket {
    /// Bind `path` (0600, root only by peer credentials) and serve it.
    pub fn start(
        path: &Path,
        tx: mpsc::Sender<ControlRequest>,
        config: ServerConfig,
    ) -> Result<ControlSocket> {
        let listener =
            bind_socket(path).with_context(|| format!("control socket {}", path.display()))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let handler = Arc::new(ChannelHandler { tx });
        let task = tokio::spawn(serve(listener, handler, config, async move {
            let _ = stopped.await;
        }));
        Ok(ControlSocket {
            stop: Some(stop),
            task,
            path: path.to_path_buf(),
        })
    }

    /// Stop accepting, finish requests in hand, remove the socket file.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
        let _ = std::fs::remove_file(&self.path);
    }
}

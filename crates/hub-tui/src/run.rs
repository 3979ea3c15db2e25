//! `progress-hub top` itself: the terminal, the input thread, the driver and
//! the loop that applies updates to the model as they come and redraws at
//! most every 50 ms (so at most 20 frames a second whatever the update
//! rate), and at least once a second for ages and countdowns.

use crate::app::{App, AppConfig, Command};
use crate::driver::{self, DriverConfig, Request};
use crate::update::Update;
use ratatui::crossterm::event::{self, Event};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Shortest time between two frames.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(50);

/// What `top` watches.
#[derive(Debug, Clone)]
pub struct TopConfig {
    /// Hub WebSocket URL.
    pub url: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// Namespace to watch.
    pub namespace: String,
    /// Extra trusted root certificates (PEM) for `wss://`.
    pub tls_root_pem: Option<Vec<u8>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Restores the terminal when dropped (normal exit or early return); the
/// panic hook installed by `ratatui::try_init` covers panics.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the dashboard until the user quits. Network trouble never ends it;
/// only a terminal that cannot be set up or drawn to does.
pub fn run(config: TopConfig) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(config))
}

async fn run_async(config: TopConfig) -> std::io::Result<()> {
    let mut app_config = AppConfig::new(config.url.clone(), config.namespace.clone());
    app_config.can_cancel = crate::token::allows_cancel(config.token.as_deref(), &config.namespace);
    let mut app = App::new(app_config);

    let (up_tx, mut updates) = mpsc::channel::<Update>(4096);
    let driver = driver::spawn(
        DriverConfig {
            url: config.url,
            token: config.token,
            namespace: config.namespace,
            tls_root_pem: config.tls_root_pem,
        },
        up_tx,
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;

    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;

    let stop = Arc::new(AtomicBool::new(false));
    let (key_tx, mut keys) = mpsc::channel::<Event>(256);
    let input = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(100)) {
                    Ok(true) => match event::read() {
                        Ok(ev) => {
                            if key_tx.blocking_send(ev).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    },
                    Ok(false) => {}
                    Err(_) => break,
                }
            }
        })
    };

    let mut tick = tokio::time::interval(FRAME_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut last_draw = 0u64;
    let result = loop {
        tokio::select! {
            u = updates.recv() => {
                let Some(u) = u else {
                    break Err(std::io::Error::other("the connection driver stopped"));
                };
                let now = now_ms();
                app.apply(u, now);
                // Drain what is queued: the model absorbs bursts, the screen
                // is redrawn once for all of them.
                for _ in 0..20_000 {
                    match updates.try_recv() {
                        Ok(u) => app.apply(u, now),
                        Err(_) => break,
                    }
                }
                dirty = true;
            }
            ev = keys.recv() => {
                match ev {
                    Some(Event::Key(k)) => {
                        for cmd in app.handle_key(k, now_ms()) {
                            match cmd {
                                Command::Cancel(id) => driver.request(Request::Cancel(id)),
                                Command::Reconnect => driver.request(Request::Reconnect),
                                Command::Quit => {}
                            }
                        }
                        dirty = true;
                    }
                    Some(_) => dirty = true,
                    None => break Err(std::io::Error::other("the terminal input closed")),
                }
            }
            _ = tick.tick() => {
                let now = now_ms();
                if dirty || now.saturating_sub(last_draw) >= 1000 {
                    app.tick(now);
                    if let Err(e) = terminal.draw(|f| app.render(f, now)) {
                        break Err(e);
                    }
                    dirty = false;
                    last_draw = now;
                }
            }
        }
        if app.should_quit() {
            break Ok(());
        }
    };
    stop.store(true, Ordering::Relaxed);
    driver.shutdown().await;
    let _ = input.join();
    result
}

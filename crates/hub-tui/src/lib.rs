//! hub-tui: the terminal dashboard behind `progress-hub top`.
//!
//! Three layers, each testable on its own:
//! - the **view model** ([`App`]): operations, connection status, toasts,
//!   filters and selection, changed only by [`Update`]s from a driver and by
//!   keys ([`App::handle_key`] returns [`Command`]s), with time always passed
//!   in — no clock reads, no IO;
//! - the **renderer** ([`App::render`]), drawing the model with ratatui into
//!   any backend (tests use `TestBackend`), visible rows only;
//! - the **driver** ([`driver`]), a thin adapter from hub-client's
//!   `Subscriber` (reconnects, resume from `(epoch, offset)`, the exact
//!   state map) to the model's updates, and [`run()`], which owns the
//!   terminal and the redraw cadence.
//!
//! API boundary: the model and renderer never touch the network or a clock;
//! the driver holds no display logic.
//!
//! ```
//! use hub_tui::{App, AppConfig, Update, ConnStatus};
//! use ratatui::{backend::TestBackend, Terminal};
//!
//! let mut app = App::new(AppConfig::new("ws://127.0.0.1:8765/ws", "default"));
//! app.apply(Update::Connection(ConnStatus::Connected), 1_000);
//! let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
//! term.draw(|f| app.render(f, 1_000)).unwrap();
//! assert!(term.backend().to_string().contains("connected"));
//! ```

pub mod app;
mod apply;
pub mod driver;
pub mod filter;
pub mod format;
mod keys;
pub mod meter;
pub mod op;
pub mod order;
mod render;
pub mod run;
pub mod toast;
pub mod token;
pub mod update;

pub use app::{App, AppConfig, Blocked, Command, Counts, Mode, RowRef};
pub use filter::StateFilter;
pub use op::{OpEntry, OpState, OpStatus, RecentEvent, StatusLook};
pub use render::state_color;
pub use run::{run, TopConfig};
pub use toast::{Toast, ToastLevel};
pub use update::{ConnStatus, OpEvent, SystemStatus, Update};

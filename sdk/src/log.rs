//! Logging through the host, which attributes each line to the calling plugin (and run).
//!
//! Use the macros [`trace!`](crate::trace), [`debug!`](crate::debug), [`info!`](crate::info),
//! [`warn!`](crate::warn) and [`error!`](crate::error), which format like `println!`.
//! Outside a Weft host (native unit tests) lines go to standard error instead.

pub use crate::__private::node::weft::plugin::host::LogLevel as Level;

/// Writes one line to the host log.
pub fn write(level: Level, message: &str) {
    if cfg!(target_arch = "wasm32") {
        crate::__private::node::weft::plugin::host::log(level, message);
    } else {
        eprintln!("[{level:?}] {message}");
    }
}

/// Logs at [`Level::Trace`] with `format!` syntax.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Trace, &::std::format!($($arg)+)) };
}

/// Logs at [`Level::Debug`] with `format!` syntax.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}

/// Logs at [`Level::Info`] with `format!` syntax.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)+)) };
}

/// Logs at [`Level::Warn`] with `format!` syntax.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}

/// Logs at [`Level::Error`] with `format!` syntax.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)+)) };
}

/// Reports progress of the current call: `fraction` from 0.0 to 1.0 (clamped by the host)
/// and a short message. Outside a Weft host this writes to standard error.
pub fn progress(fraction: f32, message: &str) {
    if cfg!(target_arch = "wasm32") {
        crate::__private::node::weft::plugin::host::progress(fraction, message);
    } else {
        eprintln!("[progress {:.0}%] {message}", fraction * 100.0);
    }
}

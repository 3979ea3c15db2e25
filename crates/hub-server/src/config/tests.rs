//! Configuration loading: precedence and errors that name key and source.

// figment's Jail closures return its (large) error type.
#![allow(clippy::result_large_err)]

use super::*;
use figment::value::Value;

fn flags(pairs: &[(&str, &str)]) -> FlagValues {
    let mut d = Dict::new();
    for (k, v) in pairs {
        d.insert((*k).into(), Value::from((*v).to_string()));
    }
    FlagValues(d)
}

#[test]
fn defaults() {
    figment::Jail::expect_with(|_| {
        let c = Config::load(None, FlagValues::default()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8765");
        assert_eq!(c.heartbeat_interval, Duration::from_secs(30));
        assert_eq!(c.history_size, 100_000);
        Ok(())
    });
}

#[test]
fn precedence_flag_env_file_default() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("hub.toml", "heartbeat_interval = \"10s\"\nidle_timeout = \"20s\"\nstall_timeout = \"7s\"\nhistory_size = 50\n")?;
        jail.set_env("PROGRESS_HUB_IDLE_TIMEOUT", "500ms");
        jail.set_env("PROGRESS_HUB_STALL_TIMEOUT", "2m");
        jail.set_env("PROGRESS_HUB_URL", "ws://ignored"); // client variable, not a server key
        let c = Config::load(
            Some(std::path::Path::new("hub.toml")),
            flags(&[("stall_timeout", "3s"), ("replay_limit", "7")]),
        )
        .unwrap();
        assert_eq!(c.heartbeat_interval, Duration::from_secs(10)); // file
        assert_eq!(c.idle_timeout, Duration::from_millis(500)); // env over file
        assert_eq!(c.stall_timeout, Duration::from_secs(3)); // flag over env
        assert_eq!(c.history_size, 50);
        assert_eq!(c.replay_limit, 7);
        Ok(())
    });
}

#[test]
fn errors_name_key_and_source() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("bad.toml", "heartbeat_intervall = \"10s\"\n")?;
        let e = Config::load(
            Some(std::path::Path::new("bad.toml")),
            FlagValues::default(),
        )
        .unwrap_err();
        assert!(
            e.0.contains("heartbeat_intervall") && e.0.contains("bad.toml"),
            "{e}"
        );
        let e = Config::load(None, flags(&[("heartbeat_interval", "soon")])).unwrap_err();
        assert!(
            e.0.contains("heartbeat_interval") && e.0.contains("flag --heartbeat-interval"),
            "{e}"
        );
        jail.set_env("PROGRESS_HUB_HISTORY_SIZE", "many");
        let e = Config::load(None, FlagValues::default()).unwrap_err();
        assert!(
            e.0.contains("history_size") && e.0.contains("PROGRESS_HUB_HISTORY_SIZE"),
            "{e}"
        );
        Ok(())
    });
}

#[test]
fn numeric_secret_stays_a_string() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("PROGRESS_HUB_JWT_SECRET", "12345");
        let c = Config::load(None, FlagValues::default()).unwrap();
        assert_eq!(c.jwt_secret.as_deref(), Some("12345"));
        Ok(())
    });
}

#[test]
fn open_hub_only_on_loopback() {
    figment::Jail::expect_with(|_| {
        let e = Config::load(None, flags(&[("listen", "0.0.0.0:0")])).unwrap_err();
        assert!(e.0.contains("insecure-no-auth"), "{e}");
        let mut f = flags(&[("listen", "0.0.0.0:0")]);
        f.0.insert("insecure_no_auth".into(), Value::from(true));
        assert!(Config::load(None, f).is_ok());
        assert!(Config::load(None, flags(&[("listen", "0.0.0.0:0"), ("jwt_secret", "s")])).is_ok());
        Ok(())
    });
}

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
fn switches_take_the_usual_words() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("hub.toml", "insecure_no_auth = true\n")?;
        jail.set_env("PROGRESS_HUB_MEMORY", "1");
        jail.set_env("PROGRESS_HUB_ALLOW_ANONYMOUS_READ", "yes");
        let c = Config::load(
            Some(std::path::Path::new("hub.toml")),
            FlagValues::default(),
        )
        .unwrap();
        assert!(c.memory && c.allow_anonymous_read && c.insecure_no_auth);
        jail.set_env("PROGRESS_HUB_MEMORY", "off");
        assert!(!Config::load(None, FlagValues::default()).unwrap().memory);
        jail.set_env("PROGRESS_HUB_MEMORY", "maybe");
        let e = Config::load(None, FlagValues::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`memory`") && e.contains("PROGRESS_HUB_MEMORY"),
            "{e}"
        );
        Ok(())
    });
}

#[test]
fn lists_are_text_or_toml_arrays() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "hub.toml",
            "allowed_origins = [\"https://a.example\", \"https://b.example\"]\nrate_limit_exempt = []\n",
        )?;
        let c = Config::load(
            Some(std::path::Path::new("hub.toml")),
            FlagValues::default(),
        )
        .unwrap();
        assert_eq!(
            c.allowed_origins.as_deref(),
            Some("https://a.example,https://b.example")
        );
        assert_eq!(c.rate_limit_exempt, "");
        jail.set_env("PROGRESS_HUB_ALLOWED_ORIGINS", "https://c.example");
        let c = Config::load(
            Some(std::path::Path::new("hub.toml")),
            FlagValues::default(),
        )
        .unwrap();
        assert_eq!(c.allowed_origins.as_deref(), Some("https://c.example"));
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

/// Text settings from variables are taken as written: not read as numbers
/// (`007` was the secret "7"), booleans or lists first.
#[test]
fn text_variables_are_taken_as_written() {
    figment::Jail::expect_with(|jail| {
        for secret in ["007", "1e3", "true", "[a]", "0x10", "+5", " 42 "] {
            jail.set_env("PROGRESS_HUB_JWT_SECRET", secret);
            let c = Config::load(None, FlagValues::default()).unwrap();
            assert_eq!(c.jwt_secret.as_deref(), Some(secret), "{secret:?}");
            assert_eq!(
                c.sources.get("jwt_secret").map(String::as_str),
                Some("environment variable PROGRESS_HUB_JWT_SECRET")
            );
        }
        Ok(())
    });
}

#[test]
fn text_settings_in_the_file_must_be_strings() {
    figment::Jail::expect_with(|jail| {
        for (key, value) in [
            ("jwt_secret", "5"),
            ("jwt_secret", "true"),
            ("jwt_secret", "1.5"),
            ("jwt_secret", "[\"a\"]"),
            ("listen", "5"),
            ("log_level", "true"),
            ("tls_cert", "1"),
        ] {
            jail.create_file("hub.toml", &format!("{key} = {value}\n"))?;
            let e = Config::load(Some("hub.toml".as_ref()), FlagValues::default()).unwrap_err();
            assert!(
                e.0.contains(&format!("`{key}`"))
                    && e.0.contains("config file")
                    && e.0.contains("hub.toml")
                    && e.0.contains("expected a string"),
                "{key} = {value}: {e}"
            );
        }
        // A string is a string, digits or not; and a variable is text.
        jail.create_file("hub.toml", "jwt_secret = \"5\"\n")?;
        let c = Config::load(Some("hub.toml".as_ref()), FlagValues::default()).unwrap();
        assert_eq!(c.jwt_secret.as_deref(), Some("5"));
        // A bad value is refused even where a higher source overrides it.
        jail.create_file("hub.toml", "jwt_secret = 5\n")?;
        jail.set_env("PROGRESS_HUB_JWT_SECRET", "12345");
        let e = Config::load(Some("hub.toml".as_ref()), FlagValues::default()).unwrap_err();
        assert!(
            e.0.contains("jwt_secret") && e.0.contains("config file"),
            "{e}"
        );
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

/// Loads with `flags` and returns the refusal, which must name `key` and `source`.
fn refused_naming(file: Option<&str>, flags: FlagValues, key: &str, source: &str) -> String {
    let e = Config::load(file.map(std::path::Path::new), flags).unwrap_err();
    // figment resolves a relative file name: the message has the full path.
    if let Some(name) = file {
        assert!(e.0.contains(name), "expected {name} in: {e}");
    }
    assert!(
        e.0.contains(&format!("`{key}`")) && e.0.contains(source),
        "expected `{key}` and {source:?} in: {e}"
    );
    e.0
}

#[test]
fn checks_after_parsing_name_key_and_source() {
    figment::Jail::expect_with(|jail| {
        for (key, value) in [
            ("listen", "notanaddr"),
            ("listen", "127.0.0.1:99999"),
            ("heartbeat_interval", "0s"),
            ("status_interval", "0s"),
            // A timer firing as fast as the hub can is no interval.
            ("heartbeat_interval", "1ns"),
            ("status_interval", "500us"),
            ("idle_timeout", "999us"),
            ("data_dir", ""),
            ("history_size", "0"),
            ("max_message_size", "0"),
            ("jwt_secret", ""),
            ("log_format", "xml"),
        ] {
            let flag = format!("flag --{}", key.replace('_', "-"));
            refused_naming(None, flags(&[(key, value)]), key, &flag);
        }
        // The same checks, the value from the file and from a variable.
        jail.create_file("hub.toml", "listen = \"notanaddr\"\n")?;
        refused_naming(
            Some("hub.toml"),
            FlagValues::default(),
            "listen",
            "config file /",
        );
        jail.set_env("PROGRESS_HUB_LISTEN", "notanaddr");
        refused_naming(
            None,
            FlagValues::default(),
            "listen",
            "environment variable PROGRESS_HUB_LISTEN",
        );
        jail.set_env("PROGRESS_HUB_LISTEN", "127.0.0.1:0");
        jail.set_env("PROGRESS_HUB_HEARTBEAT_INTERVAL", "0s");
        refused_naming(
            None,
            FlagValues::default(),
            "heartbeat_interval",
            "environment variable PROGRESS_HUB_HEARTBEAT_INTERVAL",
        );
        Ok(())
    });
}

#[test]
fn pair_rules_name_the_key_that_was_given() {
    figment::Jail::expect_with(|jail| {
        let e = refused_naming(
            None,
            flags(&[("tls_cert", "c.pem")]),
            "tls_cert",
            "flag --tls-cert",
        );
        assert!(e.contains("tls_key"), "{e}");
        jail.create_file("hub.toml", "conflate_after_bytes = 2000000\n")?;
        refused_naming(
            Some("hub.toml"),
            FlagValues::default(),
            "conflate_after_bytes",
            "config file /",
        );
        refused_naming(
            None,
            flags(&[("jwks_file", "k.json"), ("jwt_public_key", "k.pem")]),
            "jwt_public_key",
            "flag --jwt-public-key",
        );
        jail.set_env("PROGRESS_HUB_TLS_KEY", "k.pem");
        refused_naming(
            None,
            FlagValues::default(),
            "tls_key",
            "environment variable PROGRESS_HUB_TLS_KEY",
        );
        Ok(())
    });
}

#[test]
fn config_file_from_the_variable() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("env.toml", "heartbeat_interval = \"10s\"\n")?;
        jail.create_file("flag.toml", "heartbeat_interval = \"20s\"\n")?;
        jail.set_env("PROGRESS_HUB_CONFIG", "env.toml");
        let c = Config::load(None, FlagValues::default()).unwrap();
        assert_eq!(c.heartbeat_interval, Duration::from_secs(10));
        // --config wins over the variable.
        let c = Config::load(
            Some(std::path::Path::new("flag.toml")),
            FlagValues::default(),
        )
        .unwrap();
        assert_eq!(c.heartbeat_interval, Duration::from_secs(20));
        // Refusals name the variable, or the file, like --config's.
        jail.set_env("PROGRESS_HUB_CONFIG", "missing.toml");
        let e = refused_naming(
            None,
            FlagValues::default(),
            "config",
            "environment variable PROGRESS_HUB_CONFIG",
        );
        assert!(e.contains("missing.toml"), "{e}");
        refused_naming(
            Some("missing.toml"),
            FlagValues::default(),
            "config",
            "flag --config",
        );
        jail.create_file("bad.toml", "bogus_key = 1\n")?;
        jail.set_env("PROGRESS_HUB_CONFIG", "bad.toml");
        let e = Config::load(None, FlagValues::default()).unwrap_err();
        assert!(e.0.contains("bogus_key") && e.0.contains("bad.toml"), "{e}");
        Ok(())
    });
}

#[test]
fn allowed_origins_must_be_origins() {
    figment::Jail::expect_with(|_| {
        for good in [
            "https://app.example.com",
            "http://localhost:3000,https://b.example/",
            "*",
            "null",
            "chrome-extension://abcdef",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
            "https://my-app.example.co.uk",
        ] {
            let c = Config::load(None, flags(&[("allowed_origins", good)]));
            assert!(c.is_ok(), "{good}: {:?}", c.err());
        }
        for bad in [
            "not a url",
            "https://a.example/path",
            "https://a.example//",
            "https://a.example/#x",
            "/",
            "app.example.com",
            "https://",
            "https://a.example?x=1",
            "https://user@a.example",
            "https://a.com:abc",
            "https://a.com:99999",
            "https://a.com:0",
            "https://:80",
            "https://a.com:",
            "https://a.com;b",
            "https://*.a.com",
            "https://a..com",
            "http://[::1",
            "http://[nope]:80",
        ] {
            let e = Config::load(None, flags(&[("allowed_origins", bad)])).unwrap_err();
            assert!(
                e.0.contains("allowed_origins")
                    && e.0.contains("flag --allowed-origins")
                    && e.0.contains("is not an origin"),
                "{bad}: {e}"
            );
        }
        Ok(())
    });
}

#[test]
fn durations_take_zero_as_a_number_and_want_a_unit_otherwise() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("PROGRESS_HUB_ABANDON_TIMEOUT", "0");
        jail.set_env("PROGRESS_HUB_SHUTDOWN_GRACE", "0");
        let c = Config::load(None, FlagValues::default()).unwrap();
        assert_eq!(c.abandon_timeout, Duration::ZERO);
        assert_eq!(c.shutdown_grace, Duration::ZERO);
        jail.create_file(
            "hub.toml",
            "abandon_timeout = 0\nstall_timeout = \"1h 30m\"\n",
        )?;
        let c = Config::load(
            Some(std::path::Path::new("hub.toml")),
            FlagValues::default(),
        )
        .unwrap();
        assert_eq!(c.abandon_timeout, Duration::ZERO);
        assert_eq!(c.stall_timeout, Duration::from_secs(5400));
        jail.set_env("PROGRESS_HUB_STALL_TIMEOUT", "5");
        let e = Config::load(None, FlagValues::default()).unwrap_err();
        assert!(
            e.0.contains("stall_timeout")
                && e.0.contains("PROGRESS_HUB_STALL_TIMEOUT")
                && e.0.contains("has no unit"),
            "{e}"
        );
        jail.set_env("PROGRESS_HUB_STALL_TIMEOUT", "5s");
        let e =
            Config::load(None, flags(&[("abandon_timeout", "18446744073709552s")])).unwrap_err();
        assert!(
            e.0.contains("abandon_timeout") && e.0.contains("too long"),
            "{e}"
        );
        let e = Config::load(None, flags(&[("idle_timeout", "soon")])).unwrap_err();
        assert!(e.0.contains("expected one like 500ms, 10s or 2m"), "{e}");
        Ok(())
    });
}

#[test]
fn the_body_budget_is_set_like_every_key() {
    figment::Jail::expect_with(|jail| {
        let load = |flags_given: FlagValues| {
            Config::load(Some(std::path::Path::new("hub.toml")), flags_given).unwrap()
        };
        jail.create_file("hub.toml", "")?;
        assert_eq!(load(flags(&[])).max_body_bytes_in_flight, 64 << 20);
        jail.create_file("hub.toml", "max_body_bytes_in_flight = 1000\n")?;
        assert_eq!(load(flags(&[])).max_body_bytes_in_flight, 1000);
        jail.set_env("PROGRESS_HUB_MAX_BODY_BYTES_IN_FLIGHT", "2000");
        assert_eq!(load(flags(&[])).max_body_bytes_in_flight, 2000);
        let c = load(flags(&[("max_body_bytes_in_flight", "0")]));
        assert_eq!(c.max_body_bytes_in_flight, 0);
        Ok(())
    });
}

/// `--memory` with a data directory keeps nothing there: said, not silent.
#[test]
fn a_data_dir_beside_memory_is_a_warning() {
    figment::Jail::expect_with(|_| {
        let c = Config::load(None, flags(&[("memory", "true"), ("data_dir", "/tmp/x")])).unwrap();
        assert!(
            c.warnings()
                .iter()
                .any(|w| w.contains("data_dir") && w.contains("flag --data-dir")),
            "{:?}",
            c.warnings()
        );
        let c = Config::load(None, flags(&[("memory", "true")])).unwrap();
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        Ok(())
    });
}

/// Every source's values must be good on their own: one that a higher
/// source overrides is refused too, naming where it came from.
#[test]
fn a_bad_value_is_refused_even_when_overridden() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("hub.toml", "heartbeat_interval = \"bogus\"\n")?;
        let flag = flags(&[("heartbeat_interval", "1s")]);
        let e = Config::load(Some("hub.toml".as_ref()), flag).unwrap_err();
        assert!(
            e.0.contains("heartbeat_interval") && e.0.contains("config file"),
            "{e}"
        );
        jail.create_file("hub.toml", "")?;
        jail.set_env("PROGRESS_HUB_HISTORY_SIZE", "-5");
        let e = Config::load(None, flags(&[("history_size", "10")])).unwrap_err();
        assert!(e.0.contains("PROGRESS_HUB_HISTORY_SIZE"), "{e}");
        jail.set_env("PROGRESS_HUB_HISTORY_SIZE", "10");
        // A value that parses but no setting takes (a zero heartbeat).
        jail.create_file("hub.toml", "heartbeat_interval = \"0s\"\n")?;
        let flag = flags(&[("heartbeat_interval", "1s")]);
        let e = Config::load(Some("hub.toml".as_ref()), flag).unwrap_err();
        assert!(e.0.contains("must be greater than zero"), "{e}");
        // A rule over two keys holds for the merged settings only: a
        // raised conflate_after_bytes in the file is fine beside a
        // slow_client_bytes raised further by a flag.
        jail.create_file("hub.toml", "conflate_after_bytes = 100000000\n")?;
        let flag = flags(&[("slow_client_bytes", "200000000")]);
        assert!(Config::load(Some("hub.toml".as_ref()), flag).is_ok());
        Ok(())
    });
}

/// Variables are read by their upper-case names only; another spelling is
/// ignored with a warning that names the right one.
#[test]
fn variable_names_are_upper_case() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("progress_hub_heartbeat_interval", "2s");
        let c = Config::load(None, FlagValues::default()).unwrap();
        assert_eq!(c.heartbeat_interval, Config::default().heartbeat_interval);
        assert!(
            c.warnings()
                .iter()
                .any(|w| w.contains("PROGRESS_HUB_HEARTBEAT_INTERVAL")),
            "{:?}",
            c.warnings()
        );
        jail.set_env("PROGRESS_HUB_HEARTBEAT_INTERVAL", "3s");
        let c = Config::load(None, FlagValues::default()).unwrap();
        assert_eq!(c.heartbeat_interval, Duration::from_secs(3));
        Ok(())
    });
}

/// An idle timeout no longer than the heartbeat (the hub's ping) closes
/// clients that only answer pings: the hub says so at start.
#[test]
fn an_idle_timeout_within_the_heartbeat_is_warned_about() {
    figment::Jail::expect_with(|_| {
        let c = Config::load(
            None,
            flags(&[("heartbeat_interval", "10s"), ("idle_timeout", "3s")]),
        )
        .unwrap();
        assert!(
            c.warnings().iter().any(|w| w.contains("idle_timeout")),
            "{:?}",
            c.warnings()
        );
        let c = Config::load(None, FlagValues::default()).unwrap();
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        Ok(())
    });
}

/// Variable names may hold any UTF-8: one with a multi-byte character
/// where the prefix ends is no setting, and no reason to panic at start.
#[test]
fn odd_variable_names_are_looked_at_safely() {
    let mut c = Config::default();
    c.warn_unknown_vars(
        [
            "PROGRESS_HUBé",
            "PROGRESS_HUé_X",
            "pröGRESS_HUB_X",
            "PROGRESS_HUB_",
        ]
        .into_iter()
        .map(std::ffi::OsString::from),
    );
    assert!(
        c.warnings().iter().all(|w| !w.contains("PROGRESS_HUBé")),
        "{:?}",
        c.warnings()
    );
}

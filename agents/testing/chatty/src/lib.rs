//! Hostile test agent that only logs: `start` writes what parameter `mode`
//! asks for. `normal`: one ordinary line. `forged`: a line carrying a
//! newline and a fake log line of wasmbeat's own, plus terminal escapes.
//! `big`: one 100 KiB line. `huge`: one 30 MiB line. `flood`: 10,000
//! lines. Memory-heavy variants are made by the host's tests from this
//! component's bytes.
use wasmbeat_sdk::{export_agent, log, Agent, Args, Error, Meta, Param, Status};

struct Chatty;

/// What `forged` logs (the tests look for it, escaped).
const FORGED: &str = "ok\n2099-01-01T00:00:00.000000Z ERROR wasmbeat::cluster: FORGED node2 is dead\r\x1b[2K\x1b[31mred";

impl Agent for Chatty {
    fn meta_data() -> Meta {
        Meta::new("chatty", "0.1.0", "test: logs what it is told to")
            .param(Param::string("mode", "normal, forged, big, huge or flood").default("normal"))
    }
    fn start(args: &Args) -> Result<(), Error> {
        match args.get_or("mode", "normal".to_string())?.as_str() {
            "normal" => log::info("chatty: an ordinary line, 42 bytes long."),
            "forged" => log::info(FORGED),
            "big" => log::info(&"b".repeat(100 * 1024)),
            "huge" => log::info(&"h".repeat(30 << 20)),
            "flood" => {
                for i in 0..10_000 {
                    log::info(&format!("chatty flood line {i}"));
                }
            }
            other => return Err(Error::InvalidArgs(format!("unknown mode {other:?}"))),
        }
        Ok(())
    }
    fn stop(_: &Args) -> Result<(), Error> {
        Ok(())
    }
    fn monitor(_: &Args) -> Result<Status, Error> {
        Ok(Status::NotRunning)
    }
}

export_agent!(Chatty);

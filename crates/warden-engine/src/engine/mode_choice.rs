//! The mode an execution runs in (docs/modes.md#choosing-a-mode): the operator's policy's
//! choice for the program's threat level, raised where that mode cannot hold what the request
//! asks for. Runs in the engine's process, before anything is set up.

use warden_core::{Analysis, Mode, ModeRequest};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::execution::ExecutionRequest;

impl Engine {
    /// The mode `request`, whose program was graded `analysis`, runs in, and why (the
    /// result's `security.reason`). `auto` takes the weakest mode the policy allows that can
    /// hold the request: not `trusted` for a request with a volume or a network policy that
    /// lets traffic out (it has no mount or network namespace for them), which then runs
    /// sandboxed; a request that names `trusted` is refused for them later, saying why. A
    /// program's own commands run files the analysis did not read: never less than sandboxed.
    pub(super) fn execution_mode(
        &self,
        request: &ExecutionRequest,
        analysis: &Analysis,
    ) -> Result<(Mode, String), EngineError> {
        let asked = request.mode.unwrap_or(self.modes.default);
        let choice = self
            .modes
            .choose(asked, analysis.threat_level)
            .map_err(|refusal| EngineError::Refused {
                refusal,
                analysis: analysis.clone(),
            })?;
        let (mode, reason) = (choice.mode, choice.reason);
        if mode != Mode::Trusted {
            return Ok((mode, reason));
        }
        let raised = |why: String| {
            Ok((
                Mode::Sandboxed,
                format!("{reason}; raised to sandboxed: {why}"),
            ))
        };
        if request.own_commands.is_some() {
            return raised(
                "the program's own commands run files the analysis did not read".to_owned(),
            );
        }
        if asked == ModeRequest::Auto {
            if let Some(why) = self.beyond_trusted(request) {
                return raised(format!("trusted mode cannot hold {why}"));
            }
        }
        Ok((mode, reason))
    }

    /// What `request` asks for that a trusted run cannot give, if anything.
    fn beyond_trusted(&self, request: &ExecutionRequest) -> Option<String> {
        if let Some(volume) = request.volumes.first() {
            return Some(format!("the volume {:?}", volume.name));
        }
        self.network
            .egress_policy(request.network.as_deref(), Mode::Trusted)
            .map(|policy| format!("the network policy {policy:?}, which lets traffic out"))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use warden_core::{Mode, ModePolicy, ModeRequest};

    use crate::engine::{Engine, EngineConfig};
    use crate::execution::{ExecutionRequest, SourceFile, VolumeRequest};

    /// An engine whose configuration runs threat level none trusted.
    fn trusting() -> Engine {
        let mut modes = ModePolicy {
            trusted_enabled: true,
            ..ModePolicy::default()
        };
        modes.none = warden_core::mode::LevelRule::Mode(Mode::Trusted);
        Engine::new(EngineConfig {
            modes,
            ..EngineConfig::new(PathBuf::from("/nonexistent/warden"))
        })
        .expect("an engine without a sandbox")
    }

    fn benign() -> ExecutionRequest {
        ExecutionRequest {
            language: Some("python".into()),
            sources: vec![SourceFile {
                name: None,
                code: b"print(1)\n".to_vec(),
                executable: false,
            }],
            ..ExecutionRequest::default()
        }
    }

    /// Bug hunt "modes" 7: `auto` chose trusted for a request with a volume or a network
    /// policy that lets traffic out, then refused the request, which trusted cannot hold.
    #[test]
    fn auto_takes_sandboxed_when_trusted_cannot_hold_the_request() {
        let engine = trusting();
        let plain = engine.prepare(&benign()).expect("prepared");
        assert_eq!(plain.mode, Mode::Trusted, "{}", plain.reason);
        let with_volume = ExecutionRequest {
            volumes: vec![VolumeRequest {
                name: "data".into(),
                path: PathBuf::from("/data"),
                read_only: false,
            }],
            ..benign()
        };
        let prepared = engine.prepare(&with_volume).expect("prepared");
        assert_eq!(prepared.mode, Mode::Sandboxed, "{}", prepared.reason);
        assert!(prepared.reason.contains("volume"), "{}", prepared.reason);
        let with_egress = ExecutionRequest {
            network: Some("limited_access".into()),
            ..benign()
        };
        let prepared = engine.prepare(&with_egress).expect("prepared");
        assert_eq!(prepared.mode, Mode::Sandboxed, "{}", prepared.reason);
        assert!(
            prepared.reason.contains("limited_access"),
            "{}",
            prepared.reason
        );
        let no_access = ExecutionRequest {
            network: Some("no_access".into()),
            ..benign()
        };
        assert_eq!(
            engine.prepare(&no_access).expect("prepared").mode,
            Mode::Trusted
        );
        // A request that names trusted gets it, and the volume is refused as before.
        let named = ExecutionRequest {
            mode: Some(ModeRequest::Exactly(Mode::Trusted)),
            ..with_volume
        };
        assert_eq!(
            engine.prepare(&named).expect("prepared").mode,
            Mode::Trusted
        );
    }

    /// Bug hunt "modes" 8: a trusted compile reads the host's files, which no cache key
    /// holds (`#include "/tmp/x.h"`), and its artifact was cached and served again after the
    /// header changed.
    #[test]
    fn a_trusted_compile_neither_takes_nor_leaves_a_cached_artifact() {
        let engine = trusting();
        let c = |mode| ExecutionRequest {
            language: Some("c".into()),
            sources: vec![SourceFile {
                name: Some("main.c".into()),
                code: b"int main(void) { return 0; }\n".to_vec(),
                executable: false,
            }],
            mode,
            ..ExecutionRequest::default()
        };
        let trusted = engine.prepare(&c(None)).expect("prepared");
        assert_eq!(trusted.mode, Mode::Trusted);
        assert!(!trusted.cacheable);
        let sandboxed = engine
            .prepare(&c(Some(ModeRequest::Exactly(Mode::Sandboxed))))
            .expect("prepared");
        assert!(sandboxed.cacheable);
    }
}

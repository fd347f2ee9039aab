//! opentok-emulator as the service for the tests that need a real one (`cert rotate`, `doctor`).

/// opentok-emulator serving project `api_key` with `secret`, started on `runtime`, and its base URL without
/// the trailing `/` (what `api_url` takes).
pub fn start(
    runtime: &tokio::runtime::Runtime,
    api_key: &str,
    secret: &str,
) -> (opentok_emulator::RunningEmulator, String) {
    let emulator = runtime.block_on(async {
        opentok_emulator::Emulator::builder()
            .project(api_key, secret.into())
            .start()
            .await
            .unwrap()
    });
    let api_url = emulator.base_url().trim_end_matches('/').to_string();
    (emulator, api_url)
}

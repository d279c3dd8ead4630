//! Both presets exported to ONNX and run on ONNX Runtime equal the candle forward within 1e-4;
//! the live preset's streaming export equals its windowed one.

mod common;

#[test]
fn exported_networks_run_on_onnxruntime_like_candle() {
    let probe = voxmask::model::backend::init(voxmask::model::BackendChoice::OnnxRuntime, None);
    if let Err(e) = probe {
        eprintln!("SKIPPED exported_networks_run_on_onnxruntime_like_candle: {e}");
        assert!(std::env::var_os("VOXMASK_REQUIRE_ORT").is_none(), "VOXMASK_REQUIRE_ORT is set: {e}");
        return;
    }
    let name = common::export::exported_nets_match_candle(voxmask::model::BackendChoice::OnnxRuntime);
    assert_eq!(name, "onnxruntime");
}

#[test]
fn streaming_export_equals_the_windowed_one() {
    if let Err(e) = voxmask::model::backend::init(voxmask::model::BackendChoice::OnnxRuntime, None) {
        eprintln!("SKIPPED streaming_export_equals_the_windowed_one: {e}");
        assert!(std::env::var_os("VOXMASK_REQUIRE_ORT").is_none(), "VOXMASK_REQUIRE_ORT is set: {e}");
        return;
    }
    common::export::streaming_export_matches_windowed(voxmask::model::BackendChoice::OnnxRuntime);
}

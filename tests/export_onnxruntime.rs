//! Both presets exported to ONNX and run on ONNX Runtime equal the candle forward within 1e-4.

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

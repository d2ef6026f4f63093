// Writes the LoRA adapters vlmkit makes (PEFT format, fixed seeds) for the PEFT cross-check:
//   npx tsc -p . && node tools/make_our_adapter.mjs [out_dir = fixtures/lora-ours]
//   python3 tools/reference/check_peft_loads.py fixtures/lora-ours      (reference machine with peft)
// Run from the repository root (the adapters' base fixtures are named relative to it).
const { makeOurAdapters } = await import(new URL("../dist/test/adapt/our_adapters.js", import.meta.url).href);
await makeOurAdapters(process.argv[2] ?? "fixtures/lora-ours");

import {
  loadVlm, readLabeledRecords, labeledSamples, MediaCache, ClassificationTask, Trainer,
  writeSyntheticDataset, writeTinyLlavaFolder, vocabularyOf, syntheticImageLabels, SYNTHETIC_QUESTION,
} from "vlmkit";

const dir = process.argv[2] ?? "vlmkit-example";
// built-in data (coloured shapes) and a tiny LLaVA-shaped model with random weights;
// for a real model: await loadVlm({ path: "models/llava-1.5-7b-hf" }, { dtype: "bfloat16" })
const data = writeSyntheticDataset(`${dir}/data`, { trainImages: 400, valImages: 100, trainClips: 0 });
const words = vocabularyOf([SYNTHETIC_QUESTION, ...syntheticImageLabels().map((label) => `a ${label}`)]);
const vlm = await loadVlm({ config: writeTinyLlavaFolder(`${dir}/tiny-llava`, { words }) }, { device: "cpu", seed: 0 });

const train = readLabeledRecords(data.trainJsonl);
const val = readLabeledRecords(data.valJsonl, { labels: train.labels });
const media = new MediaCache(8);
const trainData = labeledSamples(train.records, media);
const valData = labeledSamples(val.records, media);

// a head on the pooled hidden states of the frozen model: each sample's features are computed once
const task = new ClassificationTask(vlm, { labels: train.labels, question: SYNTHETIC_QUESTION, pooling: "mean" });
task.prepare([trainData, valData], { log: console.log });
const trainer = new Trainer(task, trainData, valData, {
  epochs: 40, batchSize: 64, lr: 3e-3, schedule: "cosine", outputDir: `${dir}/run`, overwrite: true, progress: false,
});
const result = await trainer.fit();
trainer.optimizer.dispose();
console.log(`trained ${result.steps} steps; best val accuracy ${result.best?.value}`);

const report = task.report(valData, { split: "val", outDir: `${dir}/run/eval/val` });   // report.txt, confusion.png, ...
console.log(report.text);
task.dispose();
vlm.dispose();

// The trainer ('vitcatsvdogs/train', Node): parameters, the training loop with checkpoints, and
// predict/eval on trained checkpoints, as the `vitcatsvdogs` command uses them.
export { loadParams, paramsHelp, ParamsError, type TrainParams } from './params.ts';
export { DEMO_PARAMS } from './demo-params.ts';
export { train, evaluate, TrainerError, type TrainOptions, type TrainResult, type TrainStatus } from './trainer.ts';
export {
  loadClassifier, predictImages, evaluateFolder, formatEvalReport, attentionRollout, attentionOverlayPng, modelView,
  type Classifier, type Prediction, type PredictResult, type EvalReport,
} from './inference.ts';
export { renderTrainingPlot } from './plot.ts';
export { formatEpochLine } from './progress.ts';

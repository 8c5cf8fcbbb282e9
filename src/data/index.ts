// The image data pipeline: decoding, resizing, layouts, augmentation, caching, batching, and the
// built-in synthetic cats-vs-dogs set.
export { decodeImage, decodeFile, sniffFormat, DecodeError, DEFAULT_DECODE_LIMITS, type RgbImage, type DecodeLimits, type ImageFormat } from './decode.ts';
export { resizeRgb, resizeRgbToFloat, resizeSquare, type Rect } from './resize.ts';
export { normalizeToChw, sampleToTensor, randomResizedCropRect, resolveAugment, type AugmentOptions, type ColorJitterOptions, type ResolvedAugment } from './augment.ts';
export { scanDataset, isImageFileName, DatasetError, type Dataset, type DataItem, type LayoutKind } from './layouts.ts';
export { stratifiedSplit, assertSeparateDatasets } from './split.ts';
export { ImageCache } from './cache.ts';
export { ImageLoader, defaultCacheSize, type ImageLoaderOptions, type Batch, type SkippedFile, type LoaderStats } from './loader.ts';
export { generateSyntheticCatsDogs, drawSyntheticFace, type SyntheticOptions } from './synthetic.ts';
export { loadImageTensor } from './image.ts';

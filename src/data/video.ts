// Video files decoded with the system's ffmpeg: ffprobe counts the frames, the frames wanted are picked evenly (the
// rule frame folders use) and one ffmpeg process decodes exactly those to RGB. A long video (more frames than
// seekAbove) is not decoded whole: each wanted frame is reached by a seek to its time. Every error names the file.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { evenFrameIndices, isFrameFolder, loadFrameFolder } from "./frame_folder.js";
import type { RgbImage } from "./image.js";

export interface VideoOptions {
  /** The ffmpeg binary; default $VLMKIT_FFMPEG, else `ffmpeg` on PATH. */
  ffmpeg?: string;
  /** The ffprobe binary; default $VLMKIT_FFPROBE, else `ffprobe` on PATH. */
  ffprobe?: string;
  /**
   * Videos with more frames than this are sampled by seeking to each frame's time (one short decode per frame)
   * instead of decoding every frame; default 1000 (about 30 s at 30 fps). Needs a constant frame rate.
   */
  seekAbove?: number;
}

const DEFAULT_SEEK_ABOVE = 1000;

export interface VideoInfo {
  /** Frames in the first video stream. */
  frames: number;
  /** Size of the decoded frames (after the rotation the file asks for, which ffmpeg applies). */
  width: number;
  height: number;
  /** Where `frames` came from: packets counted, frames decoded, the container's header, or duration × frame rate. */
  countedFrom: "packets" | "decoding" | "header" | "duration";
  /** Average frames per second and the stream's first timestamp in seconds, when ffprobe reports them. */
  frameRate?: number;
  startTime?: number;
}

interface ToolRun {
  stdout: Buffer;
  stderr: string;
}

function binary(options: VideoOptions, tool: "ffmpeg" | "ffprobe"): string {
  return options[tool] ?? process.env[tool === "ffmpeg" ? "VLMKIT_FFMPEG" : "VLMKIT_FFPROBE"] ?? tool;
}

/** The path as ffmpeg must see it: `file:` so that a colon is not read as a protocol nor a leading - as an option. */
function ffmpegInput(path: string): string {
  return `file:${resolve(path)}`;
}

function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.length ? lines[lines.length - 1] : "no message";
}

/** Runs ffmpeg/ffprobe; a missing binary, a failed run or too much output is an error naming the video. */
function runTool(path: string, options: VideoOptions, tool: "ffmpeg" | "ffprobe", args: string[], maxBuffer: number, failure: string): ToolRun {
  const command = binary(options, tool);
  const result = spawnSync(command, args, { maxBuffer, stdio: ["ignore", "pipe", "pipe"] });
  if (result.error) {
    const code = (result.error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      const env = tool === "ffmpeg" ? "VLMKIT_FFMPEG" : "VLMKIT_FFPROBE";
      throw new Error(`${path}: cannot decode the video: ${tool} not found (tried '${command}'); install ffmpeg (apt-get install ffmpeg) or set ${env} to the binary`);
    }
    if (code === "ENOBUFS") throw new Error(`${path}: ${tool} wrote more than the ${maxBuffer} bytes expected`);
    throw new Error(`${path}: cannot run ${tool} ('${command}'): ${result.error.message}`);
  }
  const stderr = result.stderr.toString("utf8");
  if (result.status !== 0) {
    const how = result.signal ? `killed by ${result.signal}` : `exit code ${result.status}`;
    throw new Error(`${path}: ${failure} (${tool}, ${how}: ${lastLine(stderr).replace(`${ffmpegInput(path)}: `, "")})`);
  }
  return { stdout: result.stdout, stderr };
}

function wholeNumber(value: unknown): number | undefined {
  const n = typeof value === "string" ? Number(value) : typeof value === "number" ? value : NaN;
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

function rate(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const [num, den] = value.split("/").map(Number);
  const r = den === undefined ? num : num / den;
  return Number.isFinite(r) && r > 0 ? r : undefined;
}

/**
 * Frame count and size of a video file's first video stream. Frames are counted from packets (the whole file is
 * read but not decoded), or by decoding every frame with `decode: true` (exact, slower); when neither is
 * available, from the header, then duration × frame rate.
 */
export function probeVideo(path: string, options: VideoOptions & { decode?: boolean } = {}): VideoInfo {
  const count = options.decode ? "-count_frames" : "-count_packets";
  const entries = "stream=width,height,nb_frames,nb_read_packets,nb_read_frames,duration,start_time,avg_frame_rate,r_frame_rate:stream_side_data=rotation:format=duration";
  const args = ["-v", "error", "-select_streams", "v:0", count, "-show_entries", entries, "-of", "json", ffmpegInput(path)];
  const { stdout } = runTool(path, options, "ffprobe", args, 16 << 20, "not a video ffmpeg can read");
  let parsed: { streams?: Record<string, unknown>[]; format?: Record<string, unknown> };
  try {
    parsed = JSON.parse(stdout.toString("utf8"));
  } catch {
    throw new Error(`${path}: ffprobe gave output that is not JSON`);
  }
  const stream = parsed.streams?.[0];
  if (!stream) throw new Error(`${path}: no video stream in this file`);
  let width = wholeNumber(stream.width);
  let height = wholeNumber(stream.height);
  if (!width || !height) throw new Error(`${path}: ffprobe reports no frame size for the video stream`);
  // ffmpeg applies the display rotation when decoding, so a quarter turn swaps width and height
  const sideData = Array.isArray(stream.side_data_list) ? (stream.side_data_list as Record<string, unknown>[]) : [];
  const rotation = sideData.map((s) => Number(s.rotation)).find((r) => Number.isFinite(r)) ?? 0;
  if (Math.abs(Math.round(rotation / 90)) % 2 === 1) [width, height] = [height, width];
  const fps = rate(stream.avg_frame_rate) ?? rate(stream.r_frame_rate);
  const start = Number(stream.start_time);
  const timing: Pick<VideoInfo, "frameRate" | "startTime"> = {};
  if (fps) timing.frameRate = fps;
  if (Number.isFinite(start) && stream.start_time !== undefined) timing.startTime = start;
  const counted = wholeNumber(options.decode ? stream.nb_read_frames : stream.nb_read_packets);
  if (counted !== undefined) return { frames: counted, width, height, countedFrom: options.decode ? "decoding" : "packets", ...timing };
  const header = wholeNumber(stream.nb_frames);
  if (header !== undefined) return { frames: header, width, height, countedFrom: "header", ...timing };
  const duration = Number(stream.duration ?? parsed.format?.duration);
  if (Number.isFinite(duration) && duration >= 0 && fps) return { frames: Math.round(duration * fps), width, height, countedFrom: "duration", ...timing };
  throw new Error(`${path}: cannot tell how many frames the video has (ffprobe gives no count, duration or frame rate)`);
}

class TooFewFrames extends Error {}

/**
 * The frames at `indices` (0-based, in decode order; repeats allowed) of a video file whose size `info` gives,
 * decoded to RGB by one ffmpeg process. An error when the video has fewer frames than the indices need.
 */
export function decodeVideoFrames(path: string, indices: number[], info: Pick<VideoInfo, "width" | "height">, options: VideoOptions = {}): RgbImage[] {
  if (indices.length === 0) return [];
  if (indices.some((i) => !Number.isInteger(i) || i < 0)) throw new Error(`${path}: frame indices must be integers >= 0`);
  const wanted = [...new Set(indices)].sort((a, b) => a - b);
  const frameBytes = info.width * info.height * 3;
  // select passes the frames whose decode number n is listed; passthrough keeps ffmpeg from duplicating/dropping
  const select = `select=${wanted.map((i) => `eq(n\\,${i})`).join("+")}`;
  const args = ["-nostdin", "-v", "error", "-i", ffmpegInput(path), "-map", "0:v:0", "-vf", select, "-vsync", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"];
  const { stdout, stderr } = runTool(path, options, "ffmpeg", args, wanted.length * frameBytes + (1 << 20), "ffmpeg could not decode the video");
  if (stdout.length % frameBytes !== 0) {
    throw new Error(`${path}: ffmpeg gave ${stdout.length} bytes, not a whole number of ${info.width}x${info.height} RGB frames (does the frame size change mid-video?)`);
  }
  const decoded = stdout.length / frameBytes;
  if (decoded < wanted.length) {
    const missing = wanted.slice(decoded);
    const detail = stderr.trim() ? `; ffmpeg: ${lastLine(stderr)}` : "";
    throw new TooFewFrames(`${path}: ffmpeg decoded ${decoded} of the ${wanted.length} frames asked for (frame${missing.length > 1 ? "s" : ""} ${missing.join(", ")} missing: the video is shorter than it says or damaged${detail})`);
  }
  const offset = new Map(wanted.map((index, k) => [index, k * frameBytes]));
  // a copy per frame, so repeated frames do not share pixels
  return indices.map((i) => ({ width: info.width, height: info.height, data: Uint8Array.from(stdout.subarray(offset.get(i)!, offset.get(i)! + frameBytes)) }));
}

/**
 * The frames at `indices` of a constant-frame-rate video, each by a seek: ffmpeg jumps to the keyframe before the
 * frame's time and decodes only from there. The time asked for is half a frame before the frame's own, so the
 * first frame at or after it is that frame whatever the rounding of timestamps. Null when a seek finds no frame
 * (a variable frame rate or a count that overstates the video): the caller then decodes the whole video.
 */
export function seekVideoFrames(path: string, indices: number[], info: Pick<VideoInfo, "width" | "height" | "frameRate" | "startTime">, options: VideoOptions = {}): RgbImage[] | null {
  if (!info.frameRate) return null;
  const frameBytes = info.width * info.height * 3;
  const byIndex = new Map<number, Uint8Array>();
  for (const index of new Set(indices)) {
    const time = Math.max(0, (info.startTime ?? 0) + (index - 0.5) / info.frameRate);
    const args = ["-nostdin", "-v", "error", "-ss", time.toFixed(6), "-i", ffmpegInput(path), "-map", "0:v:0", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"];
    const { stdout } = runTool(path, options, "ffmpeg", args, frameBytes + (1 << 20), "ffmpeg could not decode the video");
    if (stdout.length !== frameBytes) return null;
    byIndex.set(index, stdout);
  }
  return indices.map((i) => ({ width: info.width, height: info.height, data: Uint8Array.from(byIndex.get(i)!) }));
}

/** `numFrames` frames sampled evenly from a video file (the frame folders' rule: first and last included). */
export function loadVideoFile(path: string, numFrames = 8, options: VideoOptions = {}): RgbImage[] {
  if (!Number.isInteger(numFrames) || numFrames < 1) throw new Error(`${path}: the number of frames to sample must be an integer >= 1, got ${numFrames}`);
  let info = probeVideo(path, options);
  if (info.frames > (options.seekAbove ?? DEFAULT_SEEK_ABOVE)) {
    const frames = seekVideoFrames(path, evenFrameIndices(info.frames, numFrames), info, options);
    if (frames) return frames;
  }
  for (;;) {
    if (info.frames === 0) throw new Error(`${path}: the video has no frames`);
    try {
      return decodeVideoFrames(path, evenFrameIndices(info.frames, numFrames), info, options);
    } catch (error) {
      // packets (or the header) can promise frames that do not decode (edit lists, a cut-off tail): count by decoding once
      if (!(error instanceof TooFewFrames) || info.countedFrom === "decoding") throw error;
      info = probeVideo(path, { ...options, decode: true });
    }
  }
}

/** A video's `numFrames` evenly sampled frames: a folder of frame images, or a video file decoded with ffmpeg. */
export function loadVideo(path: string, numFrames = 8, options: VideoOptions = {}): RgbImage[] {
  if (!existsSync(path)) throw new Error(`${path}: no such video file or folder`);
  return isFrameFolder(path) ? loadFrameFolder(path, numFrames) : loadVideoFile(path, numFrames, options);
}

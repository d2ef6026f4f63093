// CUDA device queries and caching-allocator statistics (torch.cuda.*).
import { native } from "./native.js";

export interface MemoryStats {
  allocated: number;
  reserved: number;
  peakAllocated: number;
  peakReserved: number;
}

export const cuda = {
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
  deviceName: (device?: number): string => native.cudaDeviceName(device ?? null),
  /** The device's memory in bytes (torch.cuda.get_device_properties(i).total_memory). */
  totalMemory: (device?: number): number => native.cudaTotalMemory(device ?? null),
  synchronize: (device?: number): void => native.cudaSynchronize(device ?? null),
  memoryStats: (device?: number): MemoryStats => native.cudaMemoryStats(device ?? null),
  memoryAllocated: (device?: number): number => (native.cudaMemoryStats(device ?? null) as MemoryStats).allocated,
  memoryReserved: (device?: number): number => (native.cudaMemoryStats(device ?? null) as MemoryStats).reserved,
  maxMemoryAllocated: (device?: number): number => (native.cudaMemoryStats(device ?? null) as MemoryStats).peakAllocated,
  resetPeakMemoryStats: (device?: number): void => native.cudaResetPeakMemoryStats(device ?? null),
  emptyCache: (): void => native.cudaEmptyCache(),
};

/** libtorch version this build runs on, whether it has CUDA, and whether fused attention kernels exist. */
export function buildInfo(): { torch: string; cudaBuild: boolean; flashAttention: boolean } {
  return native.versionInfo();
}
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}

// What the test environment promises. Under CI=true (and wherever Vulkan's ICD is set, as Dawn's SwiftShader
// needs) a WebGPU adapter exists, so WebGPU tests run and fail rather than skip.

/** Whether the WebGPU tests must run here. */
export const webgpuExpected = process.env['CI'] === 'true' || Boolean(process.env['VK_ICD_FILENAMES']);

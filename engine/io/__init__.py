"""Small shared file helpers: atomic writes, clear file errors, checked npz/JSON reads, capped HTTP reads,
images (PNG, 8-bit, PSNR). Import the modules themselves (engine.io.atomic, engine.io.images, ...): this
package imports nothing, so the prompt refiner's HTTP path loads without torch or numpy."""

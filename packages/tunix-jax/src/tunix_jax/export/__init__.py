"""A run's model export: writing it (:mod:`.writing`), checking it loads back
(:mod:`.verifying`), google-tunix interop (:mod:`.google_tunix`), and the Hugging Face
(:mod:`.hf_export`) and GGUF (:mod:`.gguf_export`) copies."""

/* omni_run.h: omni-run's two halves. omni_run.c runs LLM files (generation, logits,
 * tokenization); component.c runs every other component file (ViT, Q-Former, bind)
 * on .npy tensors or an image. */
#ifndef OMNI_RUN_H
#define OMNI_RUN_H

/* 1 when argv asks for a component run (--input or --image is present). */
int omni_run_is_component(int argc, char **argv);
int omni_run_component(int argc, char **argv);

#endif

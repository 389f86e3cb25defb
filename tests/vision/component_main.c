/* The component half of omni-run as its own executable, so the vision tests drive the
 * CLI path (tools/omni_run/component.c) without depending on omni_run.c's dispatch. */
int omni_run_component(int argc, char **argv);

int main(int argc, char **argv)
{
    return omni_run_component(argc, argv);
}

/*
 * commands.h - the subcommands of the preshift executable. Each takes the
 * arguments after its name (argv[0] is the subcommand's name) and returns
 * the process exit status: 0 success, 1 failure, 2 usage error.
 */
#ifndef PRESHIFT_COMMANDS_H
#define PRESHIFT_COMMANDS_H

int ps_cmd_train(int argc, char **argv);
int ps_cmd_bench(int argc, char **argv);
int ps_cmd_score(int argc, char **argv);
int ps_cmd_calibrate(int argc, char **argv);
int ps_cmd_serve(int argc, char **argv);
int ps_cmd_agent(int argc, char **argv);
int ps_cmd_manage(int argc, char **argv);
int ps_cmd_sim(int argc, char **argv);
int ps_cmd_demo(int argc, char **argv);

#endif

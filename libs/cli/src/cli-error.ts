/** A failure to report as it is: exit code 1, the message on stderr. */
export class CliError extends Error {}

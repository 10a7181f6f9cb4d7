import type { Command } from '../command';
import { callsCommands } from './calls.command';
import { deviceCommands } from './devices.command';
import { groupCommands } from './group.command';
import { identityCommands } from './identity.command';
import { ktCommands } from './kt.command';
import { linkCommands } from './link.command';
import { listenCommands } from './listen.command';
import { messagingCommands } from './messaging.command';

/** Every command, in the order the usage lists them. */
export const COMMANDS: Command[] = [...identityCommands, ...messagingCommands, ...listenCommands, ...callsCommands, ...deviceCommands, ...linkCommands, ...groupCommands, ...ktCommands];

import 'reflect-metadata';
import { runService } from '@umbra/server';
import { messageRelayService } from './message-relay.service';

void runService(messageRelayService);

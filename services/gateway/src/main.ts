import 'reflect-metadata';
import { runService } from '@umbra/server';
import { gatewayService } from './gateway.service';

void runService(gatewayService);

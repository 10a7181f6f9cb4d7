import 'reflect-metadata';
import { runService } from '@umbra/server';
import { expiryWorkerService } from './expiry-worker.service';

void runService(expiryWorkerService);

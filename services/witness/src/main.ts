import 'reflect-metadata';
import { runService } from '@umbra/server';
import { witnessService } from './witness.service';

void runService(witnessService);

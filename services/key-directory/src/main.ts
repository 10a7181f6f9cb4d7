import 'reflect-metadata';
import { runService } from '@umbra/server';
import { keyDirectoryService } from './key-directory.service';

void runService(keyDirectoryService);

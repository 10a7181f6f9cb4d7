import { Controller, Get, Inject } from '@nestjs/common';
import { buildOpenApiDocument } from '@umbra/protocol';
import { APP_CONFIG, type AppConfig } from '@umbra/server';

/** The OpenAPI document of every public route, served at the public origin. */
@Controller()
export class OpenApiController {
  private readonly document: Record<string, unknown>;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.document = buildOpenApiDocument(config.PUBLIC_ORIGIN);
  }

  @Get('openapi.json')
  get(): Record<string, unknown> {
    return this.document;
  }
}

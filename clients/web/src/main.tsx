import { render } from 'preact';
import { App } from './app.view';

const root = document.getElementById('app');
if (root) render(<App origin={window.location.origin} />, root);

import { render } from 'preact';
render(<p>aigw</p>, document.getElementById('app'));
